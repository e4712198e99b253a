# handshake_exporter container image.
#
#   docker build -t handshake_exporter \
#     --build-arg VERSION=0.1.0 --build-arg REVISION="$(git rev-parse HEAD)" \
#     --build-arg CREATED="$(date -u +%Y-%m-%dT%H:%M:%SZ)" .
#   docker run --rm -p 9866:9866 handshake_exporter --demo
#
# Stage 1 builds a fully static binary (glibc, +crt-static) for x86_64, so that stage 2
# can be FROM scratch: no shell, no package manager, nothing but the binary and the CA
# bundle. Without registry access, build the binary on the host and use Dockerfile.runtime.

FROM rust:1-bookworm AS builder

ARG TARGET=x86_64-unknown-linux-gnu
ARG REVISION=unknown

WORKDIR /src
COPY . .

# HANDSHAKE_EXPORTER_REVISION / HANDSHAKE_EXPORTER_RUSTC are read at compile time for
# the revision and rustc_version labels of handshake_exporter_build_info.
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
RUN RUSTFLAGS="-C target-feature=+crt-static" \
    HANDSHAKE_EXPORTER_REVISION="${REVISION}" \
    HANDSHAKE_EXPORTER_RUSTC="$(rustc --version | cut -d' ' -f2)" \
    cargo build --release --locked --target "${TARGET}" --bin handshake_exporter \
 && install -D -m 0755 "target/${TARGET}/release/handshake_exporter" /out/handshake_exporter \
 && /out/handshake_exporter --help >/dev/null

FROM scratch

ARG VERSION=unknown
ARG REVISION=unknown
ARG CREATED=unknown

LABEL org.opencontainers.image.title="handshake_exporter" \
      org.opencontainers.image.description="Prometheus exporter for cloud organization invitations (handshakes): Alibaba Cloud Resource Directory and Huawei Cloud Organizations" \
      org.opencontainers.image.source="https://github.com/handshake-exporter/handshake_exporter" \
      org.opencontainers.image.url="https://github.com/handshake-exporter/handshake_exporter" \
      org.opencontainers.image.documentation="https://github.com/handshake-exporter/handshake_exporter/blob/main/docs/runbook.md" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}"

COPY --from=builder /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY --from=builder /out/handshake_exporter /usr/local/bin/handshake_exporter

ENV SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt

# nobody:nogroup; numeric because scratch has no /etc/passwd.
USER 65534:65534
EXPOSE 9866

ENTRYPOINT ["/usr/local/bin/handshake_exporter"]
# Mount the configuration here (Kubernetes: deploy/kubernetes/configmap.yaml), or run
# with --demo for the built-in simulated cloud.
CMD ["--config.file=/etc/handshake_exporter/config.yml"]
