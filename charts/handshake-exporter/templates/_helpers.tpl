{{/* Chart name, truncated to the 63 characters a label value allows. */}}
{{- define "handshake-exporter.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Full name: the release name, plus the chart name unless the release name contains it. */}}
{{- define "handshake-exporter.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "handshake-exporter.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "handshake-exporter.selectorLabels" -}}
app.kubernetes.io/name: {{ include "handshake-exporter.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "handshake-exporter.labels" -}}
helm.sh/chart: {{ include "handshake-exporter.chart" . }}
{{ include "handshake-exporter.selectorLabels" . }}
app.kubernetes.io/version: {{ .Values.image.tag | default .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: handshake-exporter
{{- end }}

{{- define "handshake-exporter.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "handshake-exporter.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* The static-keys Secret's name, or nothing when no static keys are mounted. */}}
{{- define "handshake-exporter.credentialsSecret" -}}
{{- if .Values.existingSecret }}
{{- .Values.existingSecret }}
{{- else if .Values.secret.create }}
{{- printf "%s-credentials" (include "handshake-exporter.fullname" .) }}
{{- end }}
{{- end }}

{{/* Paths inside the container. Each Secret/ConfigMap is a directory mount of its own
(never subPath, never nested in another mount) so that the kubelet's updates reach it. */}}
{{- define "handshake-exporter.configDir" -}}/etc/handshake_exporter/config{{- end }}
{{- define "handshake-exporter.webDir" -}}/etc/handshake_exporter/web{{- end }}
{{- define "handshake-exporter.tlsDir" -}}/etc/handshake_exporter/tls{{- end }}
{{- define "handshake-exporter.credentialsDir" -}}/run/secrets/handshake_exporter{{- end }}

{{- define "handshake-exporter.tlsOn" -}}
{{- if and .Values.webConfig.enabled .Values.webConfig.tls.enabled }}true{{ end }}
{{- end }}

{{- define "handshake-exporter.basicAuthOn" -}}
{{- if and .Values.webConfig.enabled .Values.webConfig.basicAuth.enabled }}true{{ end }}
{{- end }}

{{/* Port name: Service meshes read the protocol from it. */}}
{{- define "handshake-exporter.portName" -}}
{{- if include "handshake-exporter.tlsOn" . }}https{{ else }}http{{ end }}
{{- end }}

{{/* Settings that only make sense together: fail with a message naming the value. */}}
{{- define "handshake-exporter.validate" -}}
{{- $w := .Values.webConfig }}
{{- if and (not $w.enabled) (or $w.tls.enabled $w.basicAuth.enabled) }}
{{- fail "webConfig.tls.enabled / webConfig.basicAuth.enabled need webConfig.enabled: true" }}
{{- end }}
{{- if and $w.enabled (not (or $w.tls.enabled $w.basicAuth.enabled)) }}
{{- fail "webConfig.enabled: true needs webConfig.tls.enabled or webConfig.basicAuth.enabled" }}
{{- end }}
{{- if and (include "handshake-exporter.tlsOn" .) (not $w.tls.existingSecret) }}
{{- fail "webConfig.tls.existingSecret is required with webConfig.tls.enabled (a kubernetes.io/tls Secret)" }}
{{- end }}
{{- if and (include "handshake-exporter.basicAuthOn" .) (not $w.basicAuth.users) }}
{{- fail "webConfig.basicAuth.users is required with webConfig.basicAuth.enabled (name: bcrypt hash)" }}
{{- end }}
{{- if and (include "handshake-exporter.basicAuthOn" .) .Values.serviceMonitor.enabled (not $w.basicAuth.existingSecret) }}
{{- fail "webConfig.basicAuth.existingSecret is required with serviceMonitor.enabled: Prometheus needs the plaintext username and password" }}
{{- end }}
{{- if and .Values.rrsa.enabled (not .Values.rrsa.roleName) }}
{{- fail "rrsa.roleName is required with rrsa.enabled (the RAM role the ServiceAccount assumes)" }}
{{- end }}
{{- if and .Values.rrsa.enabled (not .Values.serviceAccount.create) }}
{{- fail "rrsa.enabled needs serviceAccount.create: true (the chart annotates its ServiceAccount); with your own ServiceAccount, annotate it yourself and leave rrsa.enabled false" }}
{{- end }}
{{- if and .Values.eksIrsa.enabled (not .Values.eksIrsa.roleArn) }}
{{- fail "eksIrsa.roleArn is required with eksIrsa.enabled (the IAM role the ServiceAccount assumes, arn:aws:iam::<account id>:role/<name>)" }}
{{- end }}
{{- if and .Values.eksIrsa.enabled (not .Values.serviceAccount.create) }}
{{- fail "eksIrsa.enabled needs serviceAccount.create: true (the chart annotates its ServiceAccount); with your own ServiceAccount, annotate it with eks.amazonaws.com/role-arn yourself and leave eksIrsa.enabled false" }}
{{- end }}
{{- if and .Values.cce.enabled (not .Values.cce.idpId) }}
{{- fail "cce.idpId is required with cce.enabled (the IAM identity provider id)" }}
{{- end }}
{{- if and .Values.cce.enabled (not .Values.cce.audience) }}
{{- fail "cce.audience is required with cce.enabled (the identity provider's client id)" }}
{{- end }}
{{- range $i, $m := .Values.extraVolumeMounts }}
{{- if or (hasKey $m "subPath") (hasKey $m "subPathExpr") }}
{{- fail (printf "extraVolumeMounts[%d] (%v) uses subPath: a subPath mount never sees a rotated Secret or ConfigMap; mount the whole volume as a directory" $i $m.name) }}
{{- end }}
{{- end }}
{{- $min := .Values.podDisruptionBudget.minAvailable }}
{{- if and (gt (int .Values.replicaCount) 1) (not (kindIs "string" $min)) (ge (int $min) (int .Values.replicaCount)) }}
{{- fail (printf "podDisruptionBudget.minAvailable (%d) must be below replicaCount (%d), or no pod can ever be evicted and node drains hang" (int $min) (int .Values.replicaCount)) }}
{{- end }}
{{- if and .Values.existingSecret .Values.secret.create }}
{{- fail "set either existingSecret or secret.create, not both" }}
{{- end }}
{{- end }}

{{/* The exporter's config.yml: .Values.config, with the identity presets filling in the
`credentials` of sources that have none. The keys are the exporter's configuration
contract (README "Configuration"): oidc_role_arn for ACK RRSA (role, provider and token
file from the webhook's environment), federated with idp_id and id_token_file for CCE,
nothing for EKS IRSA (the default chain reads the webhook's AWS_ROLE_ARN and
AWS_WEB_IDENTITY_TOKEN_FILE), access_key_id_file / access_key_secret_file for static keys. */}}
{{- define "handshake-exporter.config" -}}
{{- $cfg := deepCopy .Values.config }}
{{- $secret := include "handshake-exporter.credentialsSecret" . }}
{{- $dir := include "handshake-exporter.credentialsDir" . }}
{{- $sources := list }}
{{- range $i, $src := (get $cfg "sources" | default list) }}
{{- $s := deepCopy $src }}
{{- if not (hasKey $s "credentials") }}
{{- if and (eq (toString $s.provider) "alibaba") $.Values.rrsa.enabled }}
{{- $_ := set $s "credentials" (dict "type" "oidc_role_arn") }}
{{- else if and (eq (toString $s.provider) "huawei") $.Values.cce.enabled }}
{{- $c := dict "type" "federated" "idp_id" $.Values.cce.idpId "id_token_file" (printf "%s/token" $.Values.cce.mountPath) }}
{{- $_ := set $s "credentials" $c }}
{{- else if and (eq (toString $s.provider) "aws") $.Values.eksIrsa.enabled }}
{{- /* IRSA: no block, so the default chain reads AWS_ROLE_ARN and
AWS_WEB_IDENTITY_TOKEN_FILE from the webhook (and static keys do not shadow it). */}}
{{- else if $secret }}
{{- if not $s.name }}{{ fail (printf "config.sources[%d] has no name: the static-key file names are <name>.access_key_id" $i) }}{{ end }}
{{- $c := dict "access_key_id_file" (printf "%s/%s.access_key_id" $dir $s.name) "access_key_secret_file" (printf "%s/%s.access_key_secret" $dir $s.name) }}
{{- $_ := set $s "credentials" $c }}
{{- end }}
{{- end }}
{{- $sources = append $sources $s }}
{{- end }}
{{- $_ := set $cfg "sources" $sources }}
{{- toYaml $cfg }}
{{- end }}

{{/* The web config (exporter-toolkit format). */}}
{{- define "handshake-exporter.webConfig" -}}
{{- $w := .Values.webConfig }}
{{- $out := dict }}
{{- if include "handshake-exporter.tlsOn" . }}
{{- $tlsDir := include "handshake-exporter.tlsDir" . }}
{{- $_ := set $out "tls_server_config" (dict "cert_file" (printf "%s/tls.crt" $tlsDir) "key_file" (printf "%s/tls.key" $tlsDir) "min_version" $w.tls.minVersion) }}
{{- end }}
{{- if include "handshake-exporter.basicAuthOn" . }}
{{- $_ := set $out "basic_auth_users" $w.basicAuth.users }}
{{- end }}
{{- toYaml $out }}
{{- end }}
