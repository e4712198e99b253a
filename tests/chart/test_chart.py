#!/usr/bin/env python3
"""Behaviour of the rendered Helm chart (run by scripts/check-chart.sh).

    HELM=/usr/local/bin/helm python3 tests/chart/test_chart.py [-v]

Renders charts/handshake-exporter with `helm template` (offline) and checks what a
schema cannot: probes on the paths that stay open under basic auth, with HTTPS when TLS
is on; a ServiceMonitor that can scrape the protected endpoint; identity presets wired
to the volumes they read; Secrets mounted as directories; the PDB, the checksum roll,
the rules copy and the schema's typo check.
"""
import os
import subprocess
import sys
import tempfile
import unittest

import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CHART = os.path.join(ROOT, "charts", "handshake-exporter")
CI = os.path.join(CHART, "ci")
HELM = os.environ.get("HELM", "helm")
OPEN_PATHS = {"/-/healthy", "/-/ready"}
NAMESPACE = "monitoring"


def helm(*args, check=True):
    env = dict(os.environ)
    tmp = tempfile.gettempdir()
    for k in ("HELM_CACHE_HOME", "HELM_CONFIG_HOME", "HELM_DATA_HOME"):
        env.setdefault(k, os.path.join(tmp, "handshake-chart-test", k.lower()))
    p = subprocess.run([HELM, *args], capture_output=True, text=True, env=env)
    if check and p.returncode != 0:
        raise AssertionError("helm %s failed (%d):\n%s" % (" ".join(args), p.returncode, p.stderr))
    return p


def render(values_file=None, *sets, release="t"):
    args = ["template", release, CHART, "--namespace", NAMESPACE]
    if values_file:
        args += ["-f", os.path.join(CI, values_file)]
    for s in sets:
        args += ["--set", s]
    docs = [d for d in yaml.safe_load_all(helm(*args).stdout) if d]
    by_kind = {}
    for d in docs:
        by_kind.setdefault(d["kind"], []).append(d)
    return by_kind


def one(objs, kind):
    items = objs.get(kind, [])
    assert len(items) == 1, "expected one %s, got %d" % (kind, len(items))
    return items[0]


def container(objs):
    return one(objs, "Deployment")["spec"]["template"]["spec"]["containers"][0]


def exporter_config(objs):
    return yaml.safe_load(one(objs, "ConfigMap")["data"]["config.yml"])


def mounts(objs):
    """mountPath -> volume, for the exporter container."""
    pod = one(objs, "Deployment")["spec"]["template"]["spec"]
    vols = {v["name"]: v for v in pod.get("volumes", [])}
    return {m["mountPath"]: vols[m["name"]]
            for m in container(objs).get("volumeMounts", [])}


def arg(objs, flag):
    for a in container(objs)["args"]:
        if a.startswith(flag + "="):
            return a.split("=", 1)[1]
    return None


class WebConfig(unittest.TestCase):
    """TLS + basic auth: probes and ServiceMonitor keep working."""

    @classmethod
    def setUpClass(cls):
        cls.objs = render("tls-basic-auth-values.yaml")
        with open(os.path.join(CI, "tls-basic-auth-values.yaml")) as f:
            cls.values = yaml.safe_load(f)

    def test_probes_go_to_open_paths_over_https(self):
        c = container(self.objs)
        port_names = {p["name"] for p in c["ports"]}
        for probe, path in (("livenessProbe", "/-/healthy"), ("readinessProbe", "/-/ready")):
            get = c[probe]["httpGet"]
            self.assertEqual(get["path"], path, probe)
            self.assertIn(get["path"], OPEN_PATHS, probe)
            self.assertEqual(get.get("scheme"), "HTTPS", "%s must use HTTPS when TLS is on" % probe)
            self.assertIn(get["port"], port_names, probe)
            # The kubelet cannot send credentials from a Secret: the paths must be open.
            self.assertNotIn("httpHeaders", get, probe)
        self.assertNotIn("startupProbe", c)

    def test_servicemonitor_scheme_tls_and_basic_auth_secret_refs(self):
        sm = one(self.objs, "ServiceMonitor")
        svc = one(self.objs, "Service")
        (ep,) = sm["spec"]["endpoints"]
        self.assertEqual(ep["scheme"], "https")
        self.assertEqual(ep["port"], svc["spec"]["ports"][0]["name"])
        self.assertEqual(ep["path"], "/metrics")
        tls_secret = self.values["webConfig"]["tls"]["existingSecret"]
        self.assertEqual(ep["tlsConfig"]["ca"], {"secret": {"name": tls_secret, "key": "ca.crt"}})
        self.assertEqual(ep["tlsConfig"]["serverName"],
                         "%s.%s.svc" % (svc["metadata"]["name"], svc["metadata"]["namespace"]))
        scrape = self.values["webConfig"]["basicAuth"]["existingSecret"]
        self.assertEqual(ep["basicAuth"], {
            "username": {"name": scrape, "key": "username"},
            "password": {"name": scrape, "key": "password"},
        })
        self.assertEqual(sm["spec"]["selector"]["matchLabels"].items() - svc["metadata"]["labels"].items(), set())

    def test_web_config_file_points_at_the_mounted_certificate(self):
        m = mounts(self.objs)
        web_file = arg(self.objs, "--web.config.file")
        self.assertIsNotNone(web_file, "--web.config.file missing")
        web_dir, web_name = os.path.split(web_file)
        self.assertIn(web_dir, m)
        secrets = {s["metadata"]["name"]: s for s in self.objs["Secret"]}
        web_secret = secrets[m[web_dir]["secret"]["secretName"]]
        web = yaml.safe_load(web_secret["stringData"][web_name])
        tls = web["tls_server_config"]
        for key in ("cert_file", "key_file"):
            d, name = os.path.split(tls[key])
            self.assertIn(d, m, key)
            self.assertEqual(m[d]["secret"]["secretName"], self.values["webConfig"]["tls"]["existingSecret"])
        self.assertEqual(web["basic_auth_users"], self.values["webConfig"]["basicAuth"]["users"])
        self.assertIn("checksum/web-config", one(self.objs, "Deployment")["spec"]["template"]["metadata"]["annotations"])

    def test_without_web_config_probes_are_plain_http(self):
        objs = render("defaults-values.yaml")
        c = container(objs)
        for probe in ("livenessProbe", "readinessProbe"):
            self.assertEqual(c[probe]["httpGet"]["scheme"], "HTTP")
            self.assertIn(c[probe]["httpGet"]["path"], OPEN_PATHS)
        self.assertIsNone(arg(objs, "--web.config.file"))

    def test_half_configured_web_config_fails_with_a_message(self):
        p = helm("template", "t", CHART, "--set", "webConfig.enabled=true,webConfig.tls.enabled=true", check=False)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("existingSecret", p.stderr)


class Identities(unittest.TestCase):
    def test_rrsa(self):
        objs = render("rrsa-values.yaml")
        sa = one(objs, "ServiceAccount")
        self.assertEqual(sa["metadata"]["annotations"]["pod-identity.alibabacloud.com/role-name"],
                         "handshake-exporter-reader")
        pod = one(objs, "Deployment")["spec"]["template"]
        self.assertEqual(pod["metadata"]["labels"]["pod-identity.alibabacloud.com/injection"], "on")
        self.assertEqual(pod["spec"]["serviceAccountName"], sa["metadata"]["name"])
        cfg = {s["name"]: s for s in exporter_config(objs)["sources"]}
        self.assertEqual(cfg["rd-prod"]["credentials"], {"type": "oidc_role_arn"})
        # A source's own block wins over the preset.
        self.assertEqual(cfg["rd-staging"]["credentials"]["role_arn"],
                         "acs:ram::1234567890123456:role/handshake-exporter-staging")
        objs = render("rrsa-values.yaml", "rrsa.podInjectionLabel=false")
        labels = one(objs, "Deployment")["spec"]["template"]["metadata"]["labels"]
        self.assertNotIn("pod-identity.alibabacloud.com/injection", labels)

    def test_eks_irsa(self):
        objs = render("eks-irsa-values.yaml", "serviceAccount.annotations.team=platform")
        sa = one(objs, "ServiceAccount")
        self.assertEqual(sa["metadata"]["annotations"], {
            "eks.amazonaws.com/role-arn": "arn:aws:iam::111122223333:role/handshake-exporter-reader",
            "eks.amazonaws.com/sts-regional-endpoints": "true",
            "team": "platform",  # merged with serviceAccount.annotations
        })
        pod = one(objs, "Deployment")["spec"]["template"]
        self.assertEqual(pod["spec"]["serviceAccountName"], sa["metadata"]["name"])
        # The webhook's token is readable by the non-root exporter through fsGroup.
        self.assertEqual(pod["spec"]["securityContext"]["fsGroup"], 65534)
        cfg = {s["name"]: s for s in exporter_config(objs)["sources"]}
        # No block injected: the default chain reads AWS_ROLE_ARN / AWS_WEB_IDENTITY_TOKEN_FILE.
        self.assertNotIn("credentials", cfg["aws-org"])
        # A source's own block wins.
        self.assertEqual(cfg["aws-member"]["credentials"]["role_arn"],
                         "arn:aws:iam::444455556666:role/handshake-exporter-member")
        objs = render("eks-irsa-values.yaml", "eksIrsa.stsRegionalEndpoints=false")
        self.assertNotIn("eks.amazonaws.com/sts-regional-endpoints",
                         one(objs, "ServiceAccount")["metadata"]["annotations"])

    def test_eks_irsa_keeps_aws_sources_keyless_next_to_static_keys(self):
        # Static keys for an Alibaba source must not turn the IRSA source into a
        # static-key source (the files would not exist and IRSA would be bypassed).
        objs = render("eks-irsa-values.yaml", "existingSecret=alibaba-keys",
                      "config.sources[3].name=rd-prod", "config.sources[3].provider=alibaba",
                      "config.sources[3].view=resource_directory")
        cfg = {s["name"]: s for s in exporter_config(objs)["sources"]}
        self.assertNotIn("credentials", cfg["aws-org"])
        self.assertTrue(cfg["rd-prod"]["credentials"]["access_key_id_file"].endswith("/rd-prod.access_key_id"))
        # Without the preset, the static keys do reach AWS sources (they read
        # access_key_id_file too).
        objs = render("eks-irsa-values.yaml", "eksIrsa.enabled=false", "existingSecret=aws-keys")
        cfg = {s["name"]: s for s in exporter_config(objs)["sources"]}
        self.assertTrue(cfg["aws-org"]["credentials"]["access_key_id_file"].endswith("/aws-org.access_key_id"))

    def test_all_presets_at_once(self):
        objs = render("everything-values.yaml")
        annotations = one(objs, "ServiceAccount")["metadata"]["annotations"]
        self.assertEqual(annotations["eks.amazonaws.com/role-arn"],
                         "arn:aws:iam::111122223333:role/handshake-exporter-reader")
        self.assertEqual(annotations["pod-identity.alibabacloud.com/role-name"], "handshake-exporter-reader")
        self.assertEqual(annotations["example.com/team"], "platform")
        cfg = {s["name"]: s for s in exporter_config(objs)["sources"]}
        self.assertEqual(cfg["rd-prod"]["credentials"], {"type": "oidc_role_arn"})
        self.assertEqual(cfg["org-main"]["credentials"]["type"], "federated")
        self.assertNotIn("credentials", cfg["aws-org"])

    def test_eks_irsa_half_configured_fails_with_a_message(self):
        p = helm("template", "t", CHART, "--set", "eksIrsa.enabled=true", check=False)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("eksIrsa.roleArn is required with eksIrsa.enabled", p.stderr)
        p = helm("template", "t", CHART, "--set",
                 "eksIrsa.enabled=true,eksIrsa.roleArn=arn:aws:iam::111122223333:role/r,serviceAccount.create=false",
                 check=False)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("eksIrsa.enabled needs serviceAccount.create: true", p.stderr)
        p = helm("template", "t", CHART, "--set", "eksIrsa.enabled=true,eksIrsa.roleArn=handshake-reader",
                 check=False)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("roleArn", p.stderr)

    def test_cce(self):
        objs = render("cce-values.yaml")
        m = mounts(objs)
        for src in exporter_config(objs)["sources"]:
            cred = src["credentials"]
            self.assertEqual(cred["type"], "federated", src["name"])
            self.assertEqual(cred["idp_id"], "cce-workload-identity")
            d, name = os.path.split(cred["id_token_file"])
            self.assertIn(d, m, "id_token_file %s is not on a mounted volume" % cred["id_token_file"])
            (source,) = m[d]["projected"]["sources"]
            tok = source["serviceAccountToken"]
            self.assertEqual(tok["path"], name)
            self.assertEqual(tok["audience"], "client-id-of-the-identity-provider")
            self.assertEqual(tok["expirationSeconds"], 3600)

    def test_static_keys_as_files_from_the_existing_secret(self):
        objs = render("static-keys-values.yaml")
        m = mounts(objs)
        for src in exporter_config(objs)["sources"]:
            cred = src["credentials"]
            files = {k: v for k, v in cred.items() if k.endswith("_file")}
            self.assertTrue(files, src["name"])
            self.assertFalse({"access_key_id", "access_key_secret"} & cred.keys(), "no inline keys")
            for k, path in files.items():
                d, name = os.path.split(path)
                self.assertIn(d, m, "%s %s is not on a mounted volume" % (k, path))
                self.assertEqual(m[d]["secret"]["secretName"], "handshake-exporter-credentials")
                self.assertTrue(name.startswith(src["name"] + "."), path)

    def test_plain_manifests_read_the_keys_of_the_example_secret(self):
        kdir = os.path.join(ROOT, "deploy", "kubernetes")
        objs = {}
        for f in ("configmap.yaml", "deployment.yaml", "secret.example.yaml"):
            with open(os.path.join(kdir, f)) as fh:
                for d in yaml.safe_load_all(fh):
                    if d:
                        objs.setdefault(d["kind"], []).append(d)
        keys = set(one(objs, "Secret")["stringData"])
        m = mounts(objs)
        for src in exporter_config(objs)["sources"]:
            for k, path in src["credentials"].items():
                d, name = os.path.split(path)
                self.assertEqual(m[d]["secret"]["secretName"], one(objs, "Secret")["metadata"]["name"])
                self.assertIn(name, keys, "%s: %s is not a key of secret.example.yaml" % (src["name"], k))


EXPORTER = os.environ.get(
    "HANDSHAKE_EXPORTER_BIN",
    os.path.join(os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target")),
                 "debug", "handshake_exporter"))
# What ACK's pod identity webhook injects for RRSA (issue 11's oidc_role_arn defaults).
RRSA_ENV = {
    "ALIBABA_CLOUD_ROLE_ARN": "acs:ram::1234567890123456:role/handshake-exporter-reader",
    "ALIBABA_CLOUD_OIDC_PROVIDER_ARN": "acs:ram::1234567890123456:oidc-provider/ack-rrsa-c1",
}
# What the EKS pod identity webhook injects for IRSA (AWS_WEB_IDENTITY_TOKEN_FILE is
# set per run to a temporary token). IMDS is off so that an AWS source the chart left
# without credentials must resolve from this environment, not fall back to an instance
# role with only a warning.
IRSA_ENV = {
    "AWS_ROLE_ARN": "arn:aws:iam::111122223333:role/handshake-exporter-reader",
    "AWS_EC2_METADATA_DISABLED": "true",
}


class ConfigAccepted(unittest.TestCase):
    """Every scenario's rendered configuration passes the real binary's --config.check.

    The files the config names (mounted keys, projected tokens) do not exist here: each
    `*_file` path is replaced by a temporary file, and the variables ACK's webhook (RRSA)
    and EKS's pod identity webhook (IRSA) inject are set, as they would be in the pod.
    """

    @unittest.skipUnless(os.access(EXPORTER, os.X_OK) or os.environ.get("HANDSHAKE_REQUIRE_TOOLS"),
                         "no exporter binary (build it, or set HANDSHAKE_EXPORTER_BIN)")
    def test_every_scenario_passes_config_check(self):
        names = sorted(f for f in os.listdir(CI) if f.endswith(".yaml"))
        self.assertGreaterEqual(len(names), 8)
        for name in names:
            with self.subTest(scenario=name), tempfile.TemporaryDirectory() as tmp:
                cfg = exporter_config(render(name))
                for i, src in enumerate(cfg.get("sources", [])):
                    for key, value in list((src.get("credentials") or {}).items()):
                        if key.endswith("_file"):
                            path = os.path.join(tmp, "%d-%s" % (i, key))
                            with open(path, "w") as f:
                                f.write("placeholder-value\n")
                            os.chmod(path, 0o600)
                            src["credentials"][key] = path
                token = os.path.join(tmp, "oidc-token")
                with open(token, "w") as f:
                    f.write("eyJhbGciOiJSUzI1NiJ9.e30.sig\n")
                path = os.path.join(tmp, "config.yml")
                with open(path, "w") as f:
                    yaml.safe_dump(cfg, f)
                env = {k: v for k, v in os.environ.items()
                       if not k.startswith(("ALIBABA_CLOUD_", "HUAWEICLOUD_", "AWS_"))}
                env.update(RRSA_ENV, ALIBABA_CLOUD_OIDC_TOKEN_FILE=token, HOME=tmp)
                env.update(IRSA_ENV, AWS_WEB_IDENTITY_TOKEN_FILE=token)
                p = subprocess.run([EXPORTER, "--config.file", path, "--config.check"],
                                   capture_output=True, text=True, env=env)
                self.assertEqual(p.returncode, 0,
                                 "%s: --config.check refused the rendered config:\n%s%s"
                                 % (name, p.stdout, p.stderr))


class Mounts(unittest.TestCase):
    def test_no_subpath_and_secrets_are_directories_in_every_scenario(self):
        for f in sorted(os.listdir(CI)):
            objs = render(f)
            c = container(objs)
            for vm in c.get("volumeMounts", []):
                self.assertNotIn("subPath", vm, "%s: %s" % (f, vm["name"]))
                self.assertNotIn("subPathExpr", vm, "%s: %s" % (f, vm["name"]))
                self.assertTrue(vm.get("readOnly"), "%s: %s must be read-only" % (f, vm["name"]))

    def test_subpath_in_extra_mounts_is_refused(self):
        p = helm("template", "t", CHART, "--set",
                 "extraVolumeMounts[0].name=x,extraVolumeMounts[0].mountPath=/x,extraVolumeMounts[0].subPath=k",
                 check=False)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("subPath", p.stderr)


class Chart(unittest.TestCase):
    def test_pdb_only_above_one_replica(self):
        self.assertNotIn("PodDisruptionBudget", render("defaults-values.yaml"))
        objs = render("ha-values.yaml")
        pdb = one(objs, "PodDisruptionBudget")
        self.assertEqual(pdb["spec"]["minAvailable"], 1)
        self.assertEqual(pdb["spec"]["selector"]["matchLabels"],
                         one(objs, "Deployment")["spec"]["selector"]["matchLabels"])

    def test_pdb_that_blocks_every_eviction_is_refused(self):
        p = helm("template", "t", CHART, "--set", "replicaCount=2,podDisruptionBudget.minAvailable=2", check=False)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("podDisruptionBudget.minAvailable (2) must be below replicaCount (2)", p.stderr)

    def test_config_checksum_rolls_the_pods(self):
        def checksum(*sets):
            d = one(render("defaults-values.yaml", *sets), "Deployment")
            return d["spec"]["template"]["metadata"]["annotations"]["checksum/config"]
        self.assertEqual(checksum(), checksum())
        self.assertNotEqual(checksum(), checksum("config.refresh_interval=2m"))

    def test_prometheusrule_is_the_rules_file(self):
        objs = render("defaults-values.yaml", "prometheusRule.enabled=true")
        with open(os.path.join(ROOT, "alerts", "handshake_exporter.rules.yml")) as f:
            rules = yaml.safe_load(f)
        self.assertEqual(one(objs, "PrometheusRule")["spec"]["groups"], rules["groups"])

    def test_servicemonitor_sets_the_job_the_alerts_expect(self):
        objs = render("defaults-values.yaml", "serviceMonitor.enabled=true")
        (ep,) = one(objs, "ServiceMonitor")["spec"]["endpoints"]
        self.assertIn({"action": "replace", "targetLabel": "job", "replacement": "handshake_exporter"},
                      ep["relabelings"])
        self.assertNotIn("scheme", ep)
        self.assertNotIn("basicAuth", ep)

    def test_validator_rejects_unknown_fields(self):
        # scripts/validate-manifests.py is what vouches for every rendering: it must fail
        # on a misspelled field of a Kubernetes kind and of a custom resource.
        objs = render("tls-basic-auth-values.yaml")
        dep, sm = one(objs, "Deployment"), one(objs, "ServiceMonitor")
        dep["spec"]["template"]["spec"]["containers"][0]["livenessProbe"]["httpGet"]["shceme"] = "HTTPS"
        sm["spec"]["endpoints"][0]["basicauth"] = sm["spec"]["endpoints"][0].pop("basicAuth")
        with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as f:
            yaml.safe_dump_all([dep, sm], f)
        try:
            p = subprocess.run([sys.executable, os.path.join(ROOT, "scripts", "validate-manifests.py"),
                                "-k", "1.29", "--crds", os.path.join(ROOT, "tests", "chart", "crds"), f.name],
                               capture_output=True, text=True)
        finally:
            os.unlink(f.name)
        self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
        self.assertIn("'shceme' was unexpected", p.stdout)
        self.assertIn("'basicauth' was unexpected", p.stdout)

    def test_schema_rejects_a_typo(self):
        p = helm("lint", "--strict", CHART, "--set", "serviceMonitor.enabeld=true", check=False)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("enabeld", p.stdout + p.stderr)


if __name__ == "__main__":
    unittest.main()
