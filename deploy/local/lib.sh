# shellcheck shell=bash
# shellcheck disable=SC2034 # the variables here are used by the scripts that source this file
# Shared by deploy/local/{up,down,status,kafka-tool,test-all}: where things live, which versions
# run, and the small helpers every script needs. Source it; it runs nothing by itself.
#
# Layout (all outside the repository):
#   $FTGO_CACHE_DIR   downloaded artifacts: the Maven repository, Kafka's jars, the registry's
#                     distribution, compiled helper classes, the cargo target dir of test-all.
#                     Safe to delete; the next `up` fetches it again.
#   $FTGO_STATE_DIR   what the running platform owns: data, logs, pid files, generated configs.
#                     `down` keeps it; `down --purge` deletes it.

set -euo pipefail

LOCAL_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
DEPLOY_DIR="$(dirname "$LOCAL_DIR")"
REPO_ROOT="$(dirname "$DEPLOY_DIR")"

# shellcheck source=env
. "$LOCAL_DIR/env"

# Pinned versions. Kafka's lives in the pom that resolves it, so Maven and we agree.
KAFKA_VERSION="$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$LOCAL_DIR/kafka/pom.xml")"
# 3.0.9 is the newest Apicurio 3 on Maven Central that runs on Java 17 (3.3.x needs Java 21).
APICURIO_VERSION="3.0.9"
MIN_JAVA_MAJOR=17
# Below this much free disk `up` refuses to start (override for a small disk at your own risk).
MIN_FREE_MB="${FTGO_MIN_FREE_MB:-2048}"

# FTGO_STATE_DIR comes from env.
FTGO_CACHE_DIR="${FTGO_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/ftgo}"
export FTGO_CACHE_DIR

RUN_DIR="$FTGO_STATE_DIR/run"
LOG_DIR="$FTGO_STATE_DIR/logs"
# Kafka's nodes (FTGO_KAFKA_BROKERS, platform.sh): node 1 in kafka/ (the process `kafka`), node
# N in kafka-N/ (the process `kafka-N`), each its data/ and server.properties there.
kafka_component() { if [ "$1" -eq 1 ]; then echo kafka; else echo "kafka-$1"; fi; }
kafka_node_dir() { echo "$FTGO_STATE_DIR/$(kafka_component "$1")"; }
KAFKA_DATA_DIR="$FTGO_STATE_DIR/kafka/data"
PG_DIR="$FTGO_STATE_DIR/postgres"
# Passwords, the local CA and the broker's key: made by `up`, never in the repository (0700).
SECRETS_DIR="$FTGO_STATE_DIR/secrets"
PG_DATA_DIR="$PG_DIR/data"
PG_SOCKET_DIR="$PG_DIR/socket"
M2_REPO="$FTGO_CACHE_DIR/m2"

# Kafka's jars are keyed by the pom's content, so editing the pom fetches a fresh set.
kafka_pom_hash() { sha256sum "$LOCAL_DIR/kafka/pom.xml" | cut -c1-12; }
KAFKA_LIBS_DIR="$FTGO_CACHE_DIR/kafka-$KAFKA_VERSION-$(kafka_pom_hash)/libs"
REGISTRY_HOME="$FTGO_CACHE_DIR/apicurio-registry-$APICURIO_VERSION"

# The components' own settings (JVM options, broker properties, PostgreSQL options, registry
# environment), shared with the images of compose.yaml.
# shellcheck source=platform.sh
. "$LOCAL_DIR/platform.sh"
TOOLS_JVM_OPTS=(-Xmx512m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 -Xshare:auto
    -Djava.awt.headless=true)

# ---- output ---------------------------------------------------------------------------------

say() { printf '%s\n' "$*"; }

# ftgo ARGS...: the project's CLI, built first (a no-op when it is current) into the cargo
# target directory the other scripts share.
ftgo_cli() {
    local target="${CARGO_TARGET_DIR:-$FTGO_CACHE_DIR/cargo-target}"
    (cd "$REPO_ROOT" && CARGO_TARGET_DIR="$target" cargo build -q -p cli --bin ftgo) >&2 ||
        die "the ftgo CLI did not build" "see the compiler's messages above"
    "$target/debug/ftgo" "$@"
}

# The services: one crate each under services/ (its directory's name is the service's name).
# Everything the scripts do per service (roles and schemas, instances, groups) derives from it.
service_names() {
    local manifest
    for manifest in "$REPO_ROOT"/services/*/Cargo.toml; do
        [ -e "$manifest" ] || continue
        basename "$(dirname "$manifest")"
    done
}
step() { printf '==> %s\n' "$*"; }
warn() { printf 'warning: %s\n' "$*" >&2; }
# die MESSAGE [HINT]: the error, then what to do about it.
die() {
    printf 'error: %s\n' "$1" >&2
    [ $# -lt 2 ] || printf '  fix: %s\n' "$2" >&2
    exit 1
}

# ---- preconditions --------------------------------------------------------------------------

require_java() {
    command -v java >/dev/null 2>&1 ||
        die "Java is not installed; Kafka and the schema registry run on the JVM." \
            "install Java $MIN_JAVA_MAJOR or newer (Debian: apt-get install openjdk-17-jre-headless), or put it on PATH."
    local major
    major="$(java -XshowSettings:properties -version 2>&1 | sed -n 's/^ *java.specification.version = \([0-9]*\).*/\1/p')"
    [ -n "$major" ] && [ "$major" -ge "$MIN_JAVA_MAJOR" ] ||
        die "Java $major is too old: Kafka $KAFKA_VERSION needs Java $MIN_JAVA_MAJOR or newer." \
            "install openjdk-17-jre-headless (or newer) and put it first on PATH, or set JAVA_HOME."
}

require_command() { # NAME WHY HINT
    command -v "$1" >/dev/null 2>&1 || die "\`$1\` is not installed; $2" "$3"
}

require_disk() { # DIR
    local dir="$1" free_mb
    mkdir -p "$dir"
    free_mb="$(df -Pm "$dir" | awk 'NR==2 {print $4}')"
    [ "$free_mb" -ge "$MIN_FREE_MB" ] ||
        die "only ${free_mb} MB free under $dir; the platform needs at least ${MIN_FREE_MB} MB." \
            "free some disk space, or point FTGO_STATE_DIR / FTGO_CACHE_DIR at a larger disk."
}

# The process listening on a TCP port of 127.0.0.1, as "name (pid N)", or nothing.
port_owner() {
    ss -Hltnp "sport = :$1" 2>/dev/null | sed -n 's/.*users:((\"\([^\"]*\)\",pid=\([0-9]*\).*/\1 (pid \2)/p' | head -n1
}

port_in_use() { ss -Hltn "sport = :$1" 2>/dev/null | grep -q .; }

# Fails when PORT is taken by anything but the process in PIDFILE.
require_port_free() { # PORT WHAT VARIABLE
    port_in_use "$1" || return 0
    local owner
    owner="$(port_owner "$1")"
    die "port $1, needed by $2, is already taken${owner:+ by $owner}." \
        "stop whatever listens there, or choose another port: export $3=<port> (then . deploy/local/env)."
}

# ---- processes ------------------------------------------------------------------------------

# The pid recorded for COMPONENT when that process is still alive and still ours (its command
# line carries -Dftgo.component=COMPONENT, so a recycled pid is never mistaken for it).
component_pid() {
    local pidfile="$RUN_DIR/$1.pid" pid
    [ -f "$pidfile" ] || return 1
    pid="$(cat "$pidfile")"
    [ -n "$pid" ] && [ -r "/proc/$pid/cmdline" ] || return 1
    tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q -- "-Dftgo.component=$1" || return 1
    printf '%s\n' "$pid"
}

# wait_until SECONDS DESCRIPTION COMMAND...: polls COMMAND every half second.
wait_until() {
    local deadline=$((SECONDS + $1)) what="$2"
    shift 2
    until "$@" >/dev/null 2>&1; do
        [ "$SECONDS" -lt "$deadline" ] || return 1
        sleep 0.5
    done
}

# ---- Kafka tools ----------------------------------------------------------------------------

# Kafka's tools by the name of their bin/ script, as the binary distribution ships them.
kafka_tool_class() {
    case "$1" in
    kafka-topics) echo org.apache.kafka.tools.TopicCommand ;;
    kafka-console-consumer) echo org.apache.kafka.tools.consumer.ConsoleConsumer ;;
    kafka-console-producer) echo org.apache.kafka.tools.ConsoleProducer ;;
    kafka-console-share-consumer) echo org.apache.kafka.tools.consumer.ConsoleShareConsumer ;;
    kafka-consumer-groups) echo org.apache.kafka.tools.consumer.group.ConsumerGroupCommand ;;
    kafka-share-groups) echo org.apache.kafka.tools.consumer.group.ShareGroupCommand ;;
    kafka-groups) echo org.apache.kafka.tools.GroupsCommand ;;
    kafka-producer-perf-test) echo org.apache.kafka.tools.ProducerPerformance ;;
    kafka-consumer-perf-test) echo org.apache.kafka.tools.ConsumerPerformance ;;
    kafka-configs) echo org.apache.kafka.tools.ConfigCommand ;;
    kafka-get-offsets) echo org.apache.kafka.tools.GetOffsetShell ;;
    kafka-delete-records) echo org.apache.kafka.tools.DeleteRecordsCommand ;;
    kafka-log-dirs) echo org.apache.kafka.tools.LogDirsCommand ;;
    kafka-transactions) echo org.apache.kafka.tools.TransactionsCommand ;;
    kafka-broker-api-versions) echo org.apache.kafka.tools.BrokerApiVersionsCommand ;;
    kafka-metadata-quorum) echo org.apache.kafka.tools.MetadataQuorumCommand ;;
    kafka-features) echo org.apache.kafka.tools.FeatureCommand ;;
    kafka-cluster) echo org.apache.kafka.tools.ClusterTool ;;
    kafka-acls) echo org.apache.kafka.tools.AclCommand ;;
    kafka-leader-election) echo org.apache.kafka.tools.LeaderElectionCommand ;;
    kafka-reassign-partitions) echo org.apache.kafka.tools.reassign.ReassignPartitionsCommand ;;
    kafka-streams-groups) echo org.apache.kafka.tools.streams.StreamsGroupCommand ;;
    kafka-storage) echo kafka.tools.StorageTool ;;
    *) return 1 ;;
    esac
}

KAFKA_TOOL_NAMES="kafka-topics kafka-console-consumer kafka-console-producer
kafka-console-share-consumer kafka-consumer-groups kafka-share-groups kafka-groups
kafka-producer-perf-test kafka-consumer-perf-test kafka-configs kafka-get-offsets
kafka-delete-records kafka-log-dirs kafka-transactions kafka-broker-api-versions
kafka-metadata-quorum kafka-features kafka-cluster kafka-acls kafka-leader-election
kafka-reassign-partitions kafka-streams-groups kafka-storage"

# Resolves Kafka's jars from Maven Central into the cache, once per pom.
ensure_kafka_jars() {
    ensure_maven_libs "$LOCAL_DIR/kafka/pom.xml" "$KAFKA_LIBS_DIR" "Apache Kafka $KAFKA_VERSION jars" "up"
}

# ensure_maven_libs POM DIR WHAT RERUN: resolves POM's runtime dependencies from Maven Central
# into DIR, once (DIR/.complete marks it whole; a failed run leaves DIR as it was). WHAT names
# them in the progress line and the error, RERUN what to run again after a failure.
ensure_maven_libs() {
    local pom="$1" dir="$2" what="$3" rerun="$4"
    [ -f "$dir/.complete" ] && return 0
    require_command mvn "it resolves $what from Maven Central." \
        "install Maven (Debian: apt-get install maven), or put it on PATH."
    step "fetching $what from Maven Central (first run only)"
    local tmp="$dir.tmp.$$"
    rm -rf "$tmp"
    mkdir -p "$tmp"
    mvn -B -q -f "$pom" -Dmaven.repo.local="$M2_REPO" \
        dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory="$tmp" \
        >"$tmp.log" 2>&1 ||
        die "Maven could not resolve $what (log: $tmp.log)." \
            "check that Maven Central is reachable (proxy settings in ~/.m2/settings.xml), then run $rerun again."
    rm -f "$tmp.log"
    touch "$tmp/.complete"
    rm -rf "$dir"
    mv "$tmp" "$dir"
}

# Fetches the schema registry's distribution from Maven Central into the cache, once.
ensure_registry_dist() {
    [ -f "$REGISTRY_HOME/.complete" ] && return 0
    require_command mvn "it fetches the schema registry from Maven Central." \
        "install Maven (Debian: apt-get install maven), or put it on PATH."
    step "fetching Apicurio Registry $APICURIO_VERSION from Maven Central (first run only)"
    local artifact="io.apicurio:apicurio-registry-app:$APICURIO_VERSION:tar.gz:all" tmp="$REGISTRY_HOME.tmp.$$"
    rm -rf "$tmp"
    mkdir -p "$tmp"
    mvn -B -q -Dmaven.repo.local="$M2_REPO" dependency:get -Dtransitive=false -Dartifact="$artifact" \
        >"$tmp.log" 2>&1 ||
        die "Maven could not fetch $artifact (log: $tmp.log)." \
            "check that Maven Central is reachable (proxy settings in ~/.m2/settings.xml), then run up again."
    tar -xzf "$M2_REPO/io/apicurio/apicurio-registry-app/$APICURIO_VERSION/apicurio-registry-app-$APICURIO_VERSION-all.tar.gz" -C "$tmp"
    rm -f "$tmp.log"
    touch "$tmp/.complete"
    rm -rf "$REGISTRY_HOME"
    mv "$tmp" "$REGISTRY_HOME"
}

# Runs a Kafka tool class with the broker's jars and a quiet log configuration.
kafka_run_class() { # CLASS ARGS...
    local class="$1"
    shift
    exec java "${TOOLS_JVM_OPTS[@]}" -Dlog4j2.configurationFile="$LOCAL_DIR/kafka/tools-log4j2.xml" \
        -cp "$KAFKA_LIBS_DIR/*" "$class" "$@"
}

# The platform's own admin helper (health check, topic manifest), compiled once per source.
PLATFORM_ADMIN_SRC="$LOCAL_DIR/kafka/PlatformAdmin.java"
platform_admin_classes() {
    local dir
    dir="$FTGO_CACHE_DIR/platform-admin-$(cat "$PLATFORM_ADMIN_SRC" "$LOCAL_DIR/kafka/pom.xml" | sha256sum | cut -c1-12)"
    if [ ! -f "$dir/PlatformAdmin.class" ]; then
        mkdir -p "$dir.tmp.$$"
        javac -nowarn -d "$dir.tmp.$$" -cp "$KAFKA_LIBS_DIR/*" "$PLATFORM_ADMIN_SRC" >&2 ||
            die "could not compile $PLATFORM_ADMIN_SRC" "install a JDK (javac), e.g. apt-get install openjdk-17-jdk-headless."
        rm -rf "$dir"
        mv "$dir.tmp.$$" "$dir"
    fi
    printf '%s\n' "$dir"
}

# platform_admin SUBCOMMAND ARGS...: PlatformAdmin as ftgo-admin.
platform_admin() {
    local classes
    classes="$(platform_admin_classes)"
    java "${TOOLS_JVM_OPTS[@]}" -Dlog4j2.configurationFile="$LOCAL_DIR/kafka/tools-log4j2.xml" \
        -cp "$classes:$KAFKA_LIBS_DIR/*" PlatformAdmin "$SECRETS_DIR/kafka/ftgo-admin.properties" "$@"
}

# ---- Kafka's security -----------------------------------------------------------------------

# ensure_password USER: the Kafka (and registry) principal USER's, SECRETS_DIR/kafka/USER.
ensure_password() { ensure_secret "$SECRETS_DIR/kafka/$1"; }

# The PostgreSQL roles' passwords: SECRETS_DIR/postgres/ROLE each, and every one in PGPASS_FILE
# (libpq's password file: psql, sqlx and the JDBC driver's clients find theirs there;
# deploy/local/env exports PGPASSFILE).
PG_SECRETS_DIR="$SECRETS_DIR/postgres"
PGPASS_FILE="$PG_SECRETS_DIR/pgpass"

# database_roles: every role setup.sql makes, a line each (platform.sh).
database_roles() {
    # shellcheck disable=SC2046 # one name per word
    platform_database_roles $(service_names)
}

# ensure_kafka_tls: the local CA and the broker's certificate under SECRETS_DIR/tls
# (make_kafka_tls, platform.sh), made once.
ensure_kafka_tls() {
    [ -s "$SECRETS_DIR/tls/broker.pem" ] && [ -s "$SECRETS_DIR/tls/ca.pem" ] && return 0
    require_command openssl "it makes the local CA and the broker's certificate." \
        "install OpenSSL's command (Debian: apt-get install openssl)."
    make_kafka_tls "$SECRETS_DIR/tls" ||
        die "could not make the local CA and the broker's certificate in $SECRETS_DIR/tls" \
            "delete $SECRETS_DIR/tls and run up again."
}

# write_kafka_client_properties USER: SECRETS_DIR/kafka/USER.properties (0600).
write_kafka_client_properties() {
    (umask 077 && kafka_client_properties "$1" "$SECRETS_DIR" >"$SECRETS_DIR/kafka/$1.properties")
}

# use_principal USER: from here on, this shell's Rust clients connect as USER, to Kafka and to
# the schema registry alike (one password per principal: SECRETS_DIR/kafka/USER).
use_principal() {
    export FTGO_KAFKA__CONFIG__SASL_USERNAME="$1" FTGO_KAFKA__CONFIG__SASL_PASSWORD_FILE="$SECRETS_DIR/kafka/$1"
    export FTGO_SCHEMA_REGISTRY__USERNAME="$1" FTGO_SCHEMA_REGISTRY__PASSWORD_FILE="$SECRETS_DIR/kafka/$1"
}

# as_principal USER COMMAND...: COMMAND (a function too) as USER, in a subshell.
as_principal() {
    (
        use_principal "$1"
        shift
        "$@"
    )
}

# ---- PostgreSQL -----------------------------------------------------------------------------

# The directory of the newest installed PostgreSQL server's binaries, or nothing.
pg_bindir() {
    local dir
    for dir in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
        [ -x "$dir/postgres" ] && { printf '%s\n' "$dir"; return 0; }
    done
    if command -v pg_config >/dev/null 2>&1; then
        dir="$(pg_config --bindir)"
        [ -x "$dir/postgres" ] && { printf '%s\n' "$dir"; return 0; }
    fi
    return 1
}

# Runs a PostgreSQL program as the cluster's owner: ourselves, or `postgres` when we are root.
as_pg_owner() {
    if [ "$(id -u)" = 0 ]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

pg_running() {
    local bindir
    bindir="$(pg_bindir)" || return 1
    [ -f "$PG_DATA_DIR/postmaster.pid" ] && as_pg_owner "$bindir/pg_ctl" status -D "$PG_DATA_DIR" >/dev/null 2>&1
}

# psql as the cluster's superuser over the private socket. ARGS are psql's.
pg_superuser_psql() {
    local bindir
    bindir="$(pg_bindir)"
    as_pg_owner env PGOPTIONS="-c client_min_messages=warning" "$bindir/psql" -X -q -v ON_ERROR_STOP=1 -h "$PG_SOCKET_DIR" -p "$FTGO_POSTGRES_PORT" -U postgres "$@"
}

# ---- schema registry ------------------------------------------------------------------------

REGISTRY_BASE_URL="http://127.0.0.1:$FTGO_REGISTRY_PORT"

# registry_curl CURL_ARGS...: curl as the shell's registry principal (FTGO_SCHEMA_REGISTRY__
# USERNAME and PASSWORD_FILE, deploy/local/env), the credentials read from stdin, not argv.
registry_curl() {
    local password=""
    [ -n "${FTGO_SCHEMA_REGISTRY__PASSWORD_FILE:-}" ] && password="$(cat "$FTGO_SCHEMA_REGISTRY__PASSWORD_FILE")"
    printf 'user = "%s:%s"\n' "${FTGO_SCHEMA_REGISTRY__USERNAME:-}" "$password" | curl -K - "$@"
}

registry_ready() {
    curl -fsS -m 2 "$REGISTRY_BASE_URL/health/ready" >/dev/null 2>&1 &&
        registry_curl -fsS -m 2 "$FTGO_SCHEMA_REGISTRY__URL/subjects" >/dev/null 2>&1
}
