# Multi-stage build of the gregor broker: a full Rust toolchain builds the release binary, and a
# slim Debian image runs it as an unprivileged user. The build command is the same one the test
# command (scripts/test.sh) runs, so CI builds exactly this binary.

FROM rust:1-slim-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock build.rs ./
COPY src ./src
# Only the broker binary: dev-dependencies (rdkafka and the test clients) are not built.
RUN cargo build --release --locked --bin gregor \
 && strip target/release/gregor

FROM debian:bookworm-slim
RUN useradd --system --uid 10001 --home-dir /var/lib/gregor --create-home gregor
# Shared mode's object store as a directory (examples/cluster/docker-compose.yml mounts one volume
# here in every broker): owned by gregor, so that a new named volume is too.
RUN mkdir -p /srv/gregor-objects && chown gregor: /srv/gregor-objects
COPY --from=build /src/target/release/gregor /usr/local/bin/gregor
COPY config/gregor.toml /etc/gregor/gregor.toml
USER gregor
WORKDIR /var/lib/gregor
VOLUME ["/var/lib/gregor"]
EXPOSE 9092 9644
# Listen on every interface inside the container. Clients are told the address they dialled
# unless KAFKA_ADVERTISED_LISTENERS (or GREGOR__SERVER__ADVERTISED) says otherwise. The HTTP
# endpoint (/healthz, /readyz, /metrics) is on 9644.
ENV GREGOR__SERVER__LISTEN=0.0.0.0:9092 \
    GREGOR__SERVER__HTTP_LISTEN=0.0.0.0:9644 \
    GREGOR__LOG__DIR=/var/lib/gregor/data
# Ready once the broker answers ApiVersions (after recovery); needs no curl or nc.
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s \
  CMD ["/usr/local/bin/gregor", "--config", "/etc/gregor/gregor.toml", "healthcheck"]
ENTRYPOINT ["/usr/local/bin/gregor", "--config", "/etc/gregor/gregor.toml"]
