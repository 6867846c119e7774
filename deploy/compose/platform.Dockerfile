# The platform images of compose.yaml: Apache Kafka (target `kafka`), Apicurio Registry
# (target `registry`) and PostgreSQL (target `postgres`), configured as deploy/local runs them
# (deploy/local/platform.sh is read by both).
#
# Build context: the repository's root. No `# syntax=` line: BuildKit's built-in frontend
# needs no image from a registry.

ARG BASE_IMAGE=debian:bookworm-slim

# Kafka's jars and the registry's distribution, from Maven Central, by the same functions of
# deploy/local/lib.sh that deploy/local/up uses (the versions live there and in
# deploy/local/kafka/pom.xml).
FROM ${BASE_IMAGE} AS fetch
# (The JRE's package links its manual page into /usr/share/man/man1, which slim images lack.)
RUN mkdir -p /usr/share/man/man1 \
    && apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends maven openjdk-17-jdk-headless \
    && rm -rf /var/lib/apt/lists/*
COPY deploy/local /src/deploy/local
COPY services /src/services
# (PlatformAdmin: the platform's admin helper, which the `security` step of compose.yaml runs.)
RUN bash -c 'export FTGO_CACHE_DIR=/fetch FTGO_STATE_DIR=/tmp/state \
    && . /src/deploy/local/lib.sh \
    && ensure_kafka_jars && ensure_registry_dist \
    && mkdir -p /out && mv "$KAFKA_LIBS_DIR" /out/kafka-libs && mv "$REGISTRY_HOME" /out/registry \
    && javac -nowarn -d /out/platform-admin -cp "/out/kafka-libs/*" "$PLATFORM_ADMIN_SRC" \
    && service_names | paste -sd" " > /out/service-names'

FROM ${BASE_IMAGE} AS jre
RUN mkdir -p /usr/share/man/man1 \
    && apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends openjdk-17-jre-headless \
    && rm -rf /var/lib/apt/lists/*
COPY deploy/local/env deploy/local/platform.sh /opt/ftgo/

# One KRaft node (broker and controller) on 127.0.0.1:$FTGO_KAFKA_PORT, over SASL_SSL, its data
# in /var/lib/kafka (a volume). The healthcheck of compose.yaml connects to the broker's port.
# The same image runs compose.yaml's `security` step (deploy/compose/kafka/security).
FROM jre AS kafka
RUN useradd --system --uid 10002 --user-group --home-dir /var/lib/kafka --create-home --shell /usr/sbin/nologin kafka
COPY --from=fetch /out/kafka-libs /opt/kafka/libs
COPY --from=fetch /out/platform-admin /opt/kafka/platform-admin
COPY deploy/local/kafka/tools-log4j2.xml deploy/compose/kafka/log4j2.xml /opt/kafka/config/
COPY deploy/compose/kafka/entrypoint deploy/compose/kafka/security /opt/kafka/
USER kafka
VOLUME /var/lib/kafka
ENTRYPOINT ["/opt/kafka/entrypoint"]

# The schema registry's Confluent-compatible API on 127.0.0.1:$FTGO_REGISTRY_PORT, storing in
# PostgreSQL's `apicurio` database.
FROM jre AS registry
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends curl \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10003 --user-group --no-create-home --shell /usr/sbin/nologin apicurio
COPY --from=fetch /out/registry /opt/apicurio
COPY deploy/compose/registry/entrypoint /opt/apicurio/entrypoint
USER apicurio
ENTRYPOINT ["/opt/apicurio/entrypoint"]

# PostgreSQL from Debian's packages, with logical decoding, on 127.0.0.1:$FTGO_POSTGRES_PORT, its
# user `postgres` uid 10004 (compose.yaml's secrets are given to that number);
# every start applies deploy/local/postgres/setup.sql (roles, databases, schemas) before it
# listens, so a healthy container is a set-up one. Data in /var/lib/postgresql/data (a volume).
FROM ${BASE_IMAGE} AS postgres
RUN mkdir -p /etc/postgresql-common/createcluster.d \
    && echo "create_main_cluster = false" >/etc/postgresql-common/createcluster.d/no-main.conf \
    && apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends postgresql \
    && rm -rf /var/lib/apt/lists/* \
    && usermod -u 10004 postgres && groupmod -g 10004 postgres \
    && mkdir -p /var/lib/postgresql/data /var/run/postgresql \
    && chown -R postgres: /var/lib/postgresql /var/run/postgresql
COPY deploy/local/env deploy/local/platform.sh deploy/local/postgres/setup.sql /opt/ftgo/
COPY --from=fetch /out/service-names /opt/ftgo/service-names
COPY deploy/compose/postgres/entrypoint /opt/ftgo/entrypoint
USER postgres
VOLUME /var/lib/postgresql/data
ENTRYPOINT ["/opt/ftgo/entrypoint"]
