# syntax=docker/dockerfile:1
# The Fanfare server image: the release binary `fanfare` on Debian slim,
# running as an unprivileged user (docs/operations.md §11.1).
#
#   docker build -t fanfare .
#   docker run --ulimit nofile=1048576:1048576 -p 6001:6001 -v fanfare-data:/var/lib/fanfare fanfare
#
# A plain `docker build` works; with BuildKit (the default) the cargo
# registry and target directory are cached between builds.

ARG RUST_VERSION=1.95

FROM rust:${RUST_VERSION}-bookworm AS builder
WORKDIR /src
# cmake for aws-lc-sys (the JWT crate's crypto) where it builds from source.
RUN apt-get update \
    && apt-get install -y --no-install-recommends cmake \
    && rm -rf /var/lib/apt/lists/*
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --locked --release -p fanfare --bin fanfare \
    && install -D -m 0755 target/release/fanfare /out/fanfare

FROM debian:bookworm-slim
# No curl or wget: the health check below uses bash's /dev/tcp. The root
# certificates are for https:// webhook URLs.
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 fanfare \
    && useradd --system --uid 10001 --gid fanfare --home-dir /var/lib/fanfare --shell /usr/sbin/nologin fanfare \
    && install -d -o fanfare -g fanfare -m 0750 /var/lib/fanfare
COPY --from=builder /out/fanfare /usr/local/bin/fanfare

ENV FANFARE_DATA_DIR=/var/lib/fanfare \
    NO_COLOR=1
USER 10001:10001
WORKDIR /var/lib/fanfare
VOLUME ["/var/lib/fanfare"]
# HTTP API, WebSocket (native and Pusher), /health, /ready, /metrics.
EXPOSE 6001
# GET /health on the default port (change it with FANFARE_LISTEN and here).
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
    CMD ["bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/6001 && printf 'GET /health HTTP/1.1\\r\\nHost: localhost\\r\\nConnection: close\\r\\n\\r\\n' >&3 && head -n 1 <&3 | grep -q ' 200 '"]
# SIGTERM drains (docs/operations.md §7); give `docker stop` more than
# shutdown_grace: docker stop -t 40.
STOPSIGNAL SIGTERM
ENTRYPOINT ["fanfare"]
CMD ["serve"]
