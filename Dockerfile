# syntax=docker/dockerfile:1
#
# The brook image: `brook node`, configured by BROOK_* variables, as a non-root user with its
# data in the /var/lib/brook volume.
#
#   docker build -t brook .
#   docker run --rm -p 9092:9092 brook                      # a single-node cluster
#   docker compose -f deploy/docker-compose.yml up          # three nodes (see that file)
#
# Two stages: the build stage has the Rust toolchain and compiles only the `brook` binary of
# brook-node (pure Rust, plus ring, which needs the C compiler the rust image has) with the
# `dist` profile (fat LTO, one codegen unit); the runtime stage is Debian slim with that binary.

ARG RUST_IMAGE=rust:1.95-bookworm
ARG RUNTIME_IMAGE=debian:bookworm-slim

FROM ${RUST_IMAGE} AS build
WORKDIR /src
COPY . .
# The cache mounts keep the registry and the target directory between builds (BuildKit); the
# binary is copied out of the cached target directory, which is not part of the image.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --locked --profile dist -p brook-node --bin brook \
    && install -D -m 0755 target/dist/brook /out/brook

FROM ${RUNTIME_IMAGE}
# ca-certificates: the default bundle an https:// JWKS endpoint (OAUTHBEARER) is checked against.
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 brook \
    && useradd --system --uid 10001 --gid brook --home-dir /var/lib/brook --no-create-home \
        --shell /usr/sbin/nologin brook \
    && install -d -o brook -g brook -m 0750 /var/lib/brook
COPY --from=build /out/brook /usr/local/bin/brook

# Defaults a container wants; every other setting comes from BROOK_* variables (see the README's
# Configuration). Listening on all interfaces: a listener without advertised.listeners then
# advertises 127.0.0.1, which is right for `docker run -p 9092:9092` and nothing else, so
# clusters set BROOK_ADVERTISED_LISTENERS. Logs go to stderr without colour codes (docker logs
# is no terminal).
ENV BROOK_LOG_DIRS=/var/lib/brook \
    BROOK_LISTENERS=PLAINTEXT://0.0.0.0:9092 \
    BROOK_LOG=info \
    NO_COLOR=1
VOLUME ["/var/lib/brook"]
WORKDIR /var/lib/brook
# Kafka, Raft (brook.raft.listener, by convention) and metrics (brook.metrics.listener).
EXPOSE 9092 9093 9644
# By number, so Kubernetes' runAsNonRoot can tell it is not root.
USER 10001:10001
# SIGTERM is brook's graceful stop (requests answered, data flushed, the Raft member stopped);
# give it time: `docker stop -t 60`, terminationGracePeriodSeconds in Kubernetes.
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/brook"]
CMD ["node"]
