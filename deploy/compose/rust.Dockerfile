# The Rust images of compose.yaml: one per service (target `service`, with the build argument
# SERVICE=order|consumer|kitchen|accounting|restaurant|delivery) and the `ftgo` CLI (target
# `ftgo`). Small runtime images: the binaries of `cargo build --release` on a Debian base, run
# as a user of their own, no build tools.
#
# Build context: the repository's root (see .dockerignore). No `# syntax=` line: BuildKit's
# built-in frontend needs no image from a registry.

# The runtime's base. Elsewhere Docker pulls it; deploy/compose/engine makes it locally from
# Debian's packages (debootstrap) where no registry of images is reachable.
ARG BASE_IMAGE=debian:bookworm-slim
# The toolchain: the official Rust image of the version the workspace is built and tested with.
# deploy/compose/engine makes an image of this name from this machine's toolchain.
ARG RUST_IMAGE=rust:1.95-slim-bookworm
# Where the binaries come from: `source` compiles them here (the default); `prebuilt` takes
# them from deploy/compose/prebuilt/ in the build context, where deploy/compose/test puts the
# release binaries test-all has already built on this machine (same Debian release, so the
# same libraries), rather than compiling everything a second time.
ARG BINARIES=source

FROM ${RUST_IMAGE} AS source
# librdkafka and libcurl are compiled from source (cmake, a C++ compiler); OpenSSL and zlib are
# linked from Debian's libraries, which the runtime image installs.
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        cmake g++ make pkg-config libssl-dev zlib1g-dev \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
# The crates and the target directory are BuildKit caches: a rebuild after a change compiles
# what changed, not the dependencies. The binaries leave the cache for /out.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    set -eu; \
    packages="-p cli"; \
    for dir in services/*/; do packages="$packages -p $(basename "$dir")-service"; done; \
    cargo build --release --locked --bins $packages; \
    mkdir /out; \
    cp target/release/ftgo target/release/*-service /out/

FROM scratch AS prebuilt
COPY deploy/compose/prebuilt/ /out/

FROM ${BINARIES} AS binaries

FROM ${BASE_IMAGE} AS runtime
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends libssl3 ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --user-group --no-create-home --shell /usr/sbin/nologin ftgo

# A service: `service run` (the default), `service describe`, `service health` (the
# healthcheck: asks this container's own instance, whichever HTTP port it took).
FROM runtime AS service
ARG SERVICE
COPY --from=binaries /out/${SERVICE}-service /usr/local/bin/${SERVICE}-service
RUN ln -s ${SERVICE}-service /usr/local/bin/service
USER ftgo
# Replicas on the host's network take different HTTP ports: the first free of the service's
# own port, +10, +20, ... (10 tries); the port taken is written for `service health`.
ENV FTGO_HTTP__PORT_ATTEMPTS=10 FTGO_HTTP__PORT_FILE=/tmp/http-port
ENTRYPOINT ["service"]
CMD ["run"]

# The CLI, with the catalog and the topic manifest where its defaults look for them.
FROM runtime AS ftgo
COPY --from=binaries /out/ftgo /usr/local/bin/ftgo
COPY schemas /usr/share/ftgo/schemas
COPY deploy/topics.toml /usr/share/ftgo/deploy/topics.toml
WORKDIR /usr/share/ftgo
USER ftgo
ENTRYPOINT ["ftgo"]
CMD ["--help"]

# compose.yaml's one-shot `secrets`, as root: the passwords, the CA and the broker's certificate,
# the registry's users, made in the `secrets` volume with deploy/local/platform.sh's functions
# and `ftgo acls plan`, and a directory per container (deploy/compose/secrets/entrypoint).
FROM ftgo AS secrets
USER root
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends openssl \
    && rm -rf /var/lib/apt/lists/*
COPY deploy/local/platform.sh deploy/compose/secrets/entrypoint /opt/ftgo/
COPY services /tmp/services
RUN for manifest in /tmp/services/*/Cargo.toml; do basename "$(dirname "$manifest")"; done \
        | paste -sd" " >/opt/ftgo/service-names \
    && rm -rf /tmp/services
ENTRYPOINT ["/opt/ftgo/entrypoint"]
CMD []
