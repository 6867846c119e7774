# The stand-in for the official Rust image where none can be pulled: deploy/compose/engine
# builds it from this machine's toolchain (the build context is the toolchain's sysroot, under
# toolchain/), laid out as the official image is: RUSTUP_HOME=/usr/local/rustup,
# CARGO_HOME=/usr/local/cargo, cargo and rustc on PATH, gcc and libc6-dev for linking.
ARG BASE_IMAGE=debian:bookworm-slim
FROM ${BASE_IMAGE}
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends ca-certificates gcc libc6-dev \
    && rm -rf /var/lib/apt/lists/*
ENV RUSTUP_HOME=/usr/local/rustup CARGO_HOME=/usr/local/cargo PATH=/usr/local/cargo/bin:$PATH
COPY toolchain /usr/local/rustup/toolchains/local
RUN mkdir -p /usr/local/cargo/bin \
    && for tool in /usr/local/rustup/toolchains/local/bin/*; do ln -s "$tool" /usr/local/cargo/bin/; done \
    && cargo --version && rustc --version
