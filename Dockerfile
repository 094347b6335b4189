# Gatehouse in a container. Built from the same steps as CI: a locked release build with
# libpq from Debian's libpq-dev and OpenSSL (for passkeys) from its libssl-dev. Not built by CI (no container engine there).
#
#   docker build -t gatehouse .
#   docker run -p 8080:8080 -v gatehouse-data:/data gatehouse

FROM rust:1.95-slim-bookworm AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends gcc libc6-dev libpq-dev libssl-dev pkg-config \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN cargo build --release --locked \
 && strip target/release/gatehouse

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates curl libpq5 libssl3 \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --home-dir /data --shell /usr/sbin/nologin gatehouse \
 && mkdir /data && chown gatehouse:gatehouse /data
COPY --from=build /src/target/release/gatehouse /usr/local/bin/gatehouse
USER gatehouse
WORKDIR /data
# SQLite and a development run's generated files live on the volume; set DATABASE_URL to a
# postgres:// URL to keep users in PostgreSQL instead.
VOLUME /data
ENV DATABASE_URL=/data/gatehouse.db \
    DATA_DIR=/data \
    BIND_ADDR=0.0.0.0:8080 \
    RUST_LOG=info
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=3s --start-period=10s \
  CMD curl -fsS http://127.0.0.1:8080/health || exit 1
# SIGTERM lets in-flight requests finish before the process exits.
STOPSIGNAL SIGTERM
ENTRYPOINT ["gatehouse"]
CMD ["serve"]
