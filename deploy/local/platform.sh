# shellcheck shell=bash
# shellcheck disable=SC2034 # the arrays are used by the scripts that source this file
# How the platform's three components are configured, in one place for both ways of running
# them: deploy/local/up (processes on this machine) and the images of compose.yaml (their
# entrypoints, under deploy/compose/). It reads the ports of deploy/local/env's variables
# (FTGO_KAFKA_PORT, FTGO_KAFKA_CONTROLLER_PORT, FTGO_REGISTRY_PORT, FTGO_POSTGRES_PORT) and
# runs nothing by itself.

KAFKA_JVM_OPTS=(-Xms256m -Xmx1g -XX:+UseG1GC -XX:MaxGCPauseMillis=20
    -XX:InitiatingHeapOccupancyPercent=35 -XX:+ExplicitGCInvokesConcurrent
    -Djava.awt.headless=true)
REGISTRY_JVM_OPTS=(-Xms64m -Xmx512m -XX:+UseG1GC -Djava.awt.headless=true)

# The broker's super users: itself, the provisioning principal and the test suite's. Every other
# principal gets exactly the ACLs of `ftgo acls plan` (crates/contracts/src/access.rs).
KAFKA_SUPER_USERS="User:ftgo-broker;User:ftgo-admin;User:ftgo-test"

# The cluster's size: FTGO_KAFKA_BROKERS KRaft nodes (deploy/local/env; 1 by default, 3 for a
# replicated cluster), each a broker and a controller. Node N listens on FTGO_KAFKA_PORT + 2(N-1)
# and its controller on FTGO_KAFKA_CONTROLLER_PORT + 2(N-1): 9092/9093, 9094/9095, 9096/9097.
kafka_brokers() { printf '%s\n' "${FTGO_KAFKA_BROKERS:-1}"; }
kafka_broker_port() { printf '%s\n' $((FTGO_KAFKA_PORT + 2 * ($1 - 1))); }
kafka_controller_port() { printf '%s\n' $((FTGO_KAFKA_CONTROLLER_PORT + 2 * ($1 - 1))); }
# Copies of each partition (every node's, up to 3), and how many must have a write before it
# is acknowledged (one less: a write survives one node down).
kafka_replication() { local n; n="$(kafka_brokers)"; printf '%s\n' $((n < 3 ? n : 3)); }
kafka_min_insync() { local r; r="$(kafka_replication)"; printf '%s\n' $((r > 1 ? r - 1 : 1)); }

# Listeners reached through proxies (deploy/local/chaos puts Toxiproxy between each service and
# the brokers). With FTGO_KAFKA_PROXIED="order kitchen ..." (up to 10 names) and
# FTGO_KAFKA_PROXY_PORT=P, node N has one more listener per name, P_<NAME>, on
# kafka_proxied_port N K (K: the name's place, from 0) and advertised on kafka_proxy_port N K,
# where a proxy listens and forwards to it: a client that bootstraps through its own proxies
# is sent to them for every broker, so cutting them cuts that client only. Unset: none.
kafka_proxy_port() { printf '%s\n' $((FTGO_KAFKA_PROXY_PORT + 20 * ($1 - 1) + $2)); }
kafka_proxied_port() { printf '%s\n' $((FTGO_KAFKA_PROXY_PORT + 10 + 20 * ($1 - 1) + $2)); }

# kafka_server_properties DATA_DIR SECRETS_DIR [NODE]: the configuration of node NODE (1 by
# default) of the cluster, broker and controller, on 127.0.0.1. Clients and the brokers speak
# SASL_SSL with SCRAM-SHA-512 on the BROKER listener; the controller listener speaks TLS with
# client certificates (KRaft keeps SCRAM credentials in its metadata log, which the controller
# listener must work without), and the brokers' certificate (CN=ftgo-broker) is their principal
# there. StandardAuthorizer: nothing is allowed that no ACL allows. SECRETS_DIR holds
# tls/ca.pem, tls/broker.pem (key and certificate) and kafka/ftgo-broker (its password);
# lib.sh's ensure_kafka_secrets makes them. One node finds its controller quorum by bootstrap
# (formatted --standalone); several name every voter (controller.quorum.voters, a static
# quorum, formatted alike).
#
# kafka_server_properties DATA_DIR --plaintext: one node with no security at all, for
# deploy/local/bench-security's baseline only (what TLS and SASL cost).
kafka_server_properties() {
    local data="$1" secrets="$2" node="${3:-1}" brokers replication min_insync port controller voters="" i
    brokers="$(kafka_brokers)"
    [ "$secrets" = --plaintext ] && brokers=1
    replication="$(kafka_replication)" min_insync="$(kafka_min_insync)"
    port="$(kafka_broker_port "$node")" controller="$(kafka_controller_port "$node")"
    local listeners="BROKER://127.0.0.1:$port,CONTROLLER://127.0.0.1:$controller"
    local advertised="BROKER://127.0.0.1:$port" protocols="CONTROLLER:SSL,BROKER:SASL_SSL" jaas="" name k=0
    for name in ${FTGO_KAFKA_PROXIED:-}; do
        [ "$secrets" != --plaintext ] || break
        name="P_$(tr '[:lower:]-' '[:upper:]_' <<<"$name")"
        listeners+=",$name://127.0.0.1:$(kafka_proxied_port "$node" "$k")"
        advertised+=",$name://127.0.0.1:$(kafka_proxy_port "$node" "$k")"
        protocols+=",$name:SASL_SSL"
        jaas+="listener.name.${name,,}.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;"$'\n'
        k=$((k + 1))
    done
    cat <<PROPERTIES
# Generated from deploy/local/platform.sh; edits are overwritten.
process.roles=broker,controller
node.id=$node
listeners=$listeners
advertised.listeners=$advertised
controller.listener.names=CONTROLLER
inter.broker.listener.name=BROKER
log.dirs=$data
PROPERTIES
    if [ "$brokers" -eq 1 ]; then
        echo "controller.quorum.bootstrap.servers=127.0.0.1:$FTGO_KAFKA_CONTROLLER_PORT"
        replication=1 min_insync=1
    else
        for i in $(seq 1 "$brokers"); do voters+="${voters:+,}$i@127.0.0.1:$(kafka_controller_port "$i")"; done
        echo "controller.quorum.voters=$voters"
    fi
    if [ "$secrets" = --plaintext ]; then
        echo "listener.security.protocol.map=CONTROLLER:PLAINTEXT,BROKER:PLAINTEXT"
    else
        cat <<PROPERTIES
listener.security.protocol.map=$protocols
${jaas}sasl.enabled.mechanisms=SCRAM-SHA-512
sasl.mechanism.inter.broker.protocol=SCRAM-SHA-512
listener.name.broker.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username="ftgo-broker" password="$(cat "$secrets/kafka/ftgo-broker")";
ssl.keystore.type=PEM
ssl.keystore.location=$secrets/tls/broker.pem
ssl.truststore.type=PEM
ssl.truststore.location=$secrets/tls/ca.pem
listener.name.controller.ssl.client.auth=required
ssl.principal.mapping.rules=RULE:^CN=([^,]+)\$/\$1/,DEFAULT
authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer
allow.everyone.if.no.acl.found=false
super.users=$KAFKA_SUPER_USERS
PROPERTIES
    fi
    cat <<PROPERTIES
# Topics come from deploy/topics.toml (and tests create their own); a typo in a topic name
# should fail loudly, not create a topic.
auto.create.topics.enable=false
num.partitions=1
default.replication.factor=$replication
min.insync.replicas=$min_insync
offsets.topic.replication.factor=$replication
offsets.topic.num.partitions=12
transaction.state.log.replication.factor=$replication
transaction.state.log.min.isr=$min_insync
share.coordinator.state.topic.replication.factor=$replication
share.coordinator.state.topic.min.isr=$min_insync
# No reason to wait for more members before a group's first rebalance: tests start their
# members together, and the services' instances join as they start.
group.initial.rebalance.delay.ms=0
delete.topic.enable=true
log.retention.check.interval.ms=60000
PROPERTIES
}

# postgres_options: PostgreSQL's settings, as `-c name=value` arguments (on the command line,
# not in postgresql.conf, so they follow the repository). The caller adds where to listen.
postgres_options() {
    # Logical decoding: the log-tailing outbox relays read their service's outbox through it.
    printf -- '-c %s ' wal_level=logical max_replication_slots=32 max_wal_senders=32 max_connections=300
    # 512 MB of buffers (PostgreSQL's default is 128 MB): six services' inboxes, sagas and
    # orders outgrow 128 MB after a few benchmark runs, and every miss is a copy from the OS.
    printf -- '-c %s ' shared_buffers=512MB log_min_messages=warning log_line_prefix=%m_[%p]_
    # Outboxes are queues (rows deleted within milliseconds): look for tables to vacuum every
    # 10 s rather than every minute, so they stay small (docs/outbox.md).
    printf -- '-c %s ' autovacuum_naptime=10s
    # Passwords are stored as SCRAM verifiers (the default since PostgreSQL 14; said anyway).
    printf -- '-c %s ' password_encryption=scram-sha-256
}

# postgres_hba: PostgreSQL's client authentication (pg_hba.conf), written over the cluster's
# own on every start so it follows the repository. The local socket (private to the cluster's
# owner, or to its container) trusts the superuser only, for setup.sql; over TCP every role
# gives its password (scram-sha-256); physical replication only for ftgo_admin. A logical
# replication connection names a database, so it matches the `all` lines, not `replication`:
# what gates it is the REPLICATION attribute, which setup.sql gives ftgo_admin alone.
postgres_hba() {
    cat <<HBA
# Generated from deploy/local/platform.sh; edits are overwritten.
# TYPE  DATABASE     USER        ADDRESS        METHOD
local   all          postgres                   trust
host    replication  ftgo_admin  127.0.0.1/32   scram-sha-256
host    replication  ftgo_admin  ::1/128        scram-sha-256
host    all          all         127.0.0.1/32   scram-sha-256
host    all          all         ::1/128        scram-sha-256
HBA
}

# registry_environment AUTH_FILE: exports Apicurio Registry's settings. Storage: the `apicurio`
# database of our PostgreSQL, so schemas and their ids survive restarts. AUTH_FILE
# (registry_auth_properties' output) holds its users and roles and its database password:
# every call authenticates, and the core API's deletions are off; subjects can still be deleted
# through the Confluent API by the roles that may write (the registry ignores those switches
# there: docs/security.md).
registry_environment() {
    export QUARKUS_HTTP_HOST=127.0.0.1 QUARKUS_HTTP_PORT="$FTGO_REGISTRY_PORT"
    export APICURIO_STORAGE_KIND=sql APICURIO_STORAGE_SQL_KIND=postgresql
    export APICURIO_DATASOURCE_URL="jdbc:postgresql://127.0.0.1:$FTGO_POSTGRES_PORT/apicurio"
    export APICURIO_DATASOURCE_USERNAME=apicurio
    # The database password is in the file too (a variable would win over it).
    export QUARKUS_CONFIG_LOCATIONS="file:${1:?names the registry auth file}"
    export APICURIO_REST_DELETION_ARTIFACT_ENABLED=false
    export APICURIO_REST_DELETION_ARTIFACT_VERSION_ENABLED=false
    export APICURIO_REST_DELETION_GROUP_ENABLED=false
    export QUARKUS_LOG_CONSOLE_JSON=false
    # The Confluent API finds a schema by its canonical form, as Confluent's registry does, not
    # by its text byte for byte: a producer with auto.register.schemas=false (Java's
    # Schema.toString() is compact JSON) finds the version our services registered from the
    # committed .avsc files (docs/runtime.md, "What a producer outside this project must set").
    export APICURIO_CCOMPAT_USE_CANONICAL_HASH=true
}

# registry_auth_properties SECRETS_DIR < PLAN: Apicurio Registry's authentication (Quarkus'
# configuration): HTTP basic against users embedded in it, a user per `registry NAME ROLE` line
# of `ftgo acls plan` with the password in SECRETS_DIR/kafka/NAME (a principal has one password,
# for Kafka and the registry alike), and role-based authorization with no anonymous access; and
# the password of its database role (SECRETS_DIR/postgres/apicurio).
registry_auth_properties() {
    local secrets="$1" word user role
    printf 'apicurio.datasource.password=%s\n' "$(cat "$secrets/postgres/apicurio")"
    cat <<'PROPERTIES'
quarkus.http.auth.basic=true
quarkus.oidc.tenant-enabled=false
quarkus.security.users.embedded.enabled=true
quarkus.security.users.embedded.plain-text=true
apicurio.auth.enabled=true
apicurio.auth.role-based-authorization=true
apicurio.auth.role-source=token
apicurio.auth.anonymous-read-access.enabled=false
PROPERTIES
    while read -r word user role; do
        [ "$word" = registry ] || continue
        printf 'quarkus.security.users.embedded.users.%s=%s\n' "$user" "$(cat "$secrets/kafka/$user")"
        printf 'quarkus.security.users.embedded.roles.%s=%s\n' "$user" "$role"
    done
}

# ---- secrets: made by deploy/local/up under its state directory, and by compose.yaml's
# ---- `secrets` container in its volume (deploy/compose/secrets/entrypoint), the same way.

# A new random password: 24 characters of [A-Za-z0-9_-] (safe in URLs and in Kafka's SCRAM
# syntax).
random_password() {
    head -c 18 /dev/urandom | base64 | tr '+/' '-_'
}

# ensure_secret FILE: a random password in FILE, made when missing (0600, its directory 0700).
# Kept across restarts; to rotate a password, replace the file and run up again
# (docs/security.md).
ensure_secret() {
    [ -s "$1" ] && return 0
    (umask 077 && mkdir -p "$(dirname "$1")" && random_password >"$1")
}

# platform_database_roles SERVICE...: every role setup.sql makes, a line each: the admin, the
# registry's, and each service's runtime and migration roles.
platform_database_roles() {
    local name
    printf '%s\n' ftgo_admin apicurio
    for name in "$@"; do
        printf '%s\n' "ftgo_$name" "ftgo_${name}_owner"
    done
}

# make_kafka_tls DIR: a CA (made when DIR has none) and the broker's certificate (CN=ftgo-broker,
# for 127.0.0.1 and localhost; its key and certificate in one PEM file, as Kafka's PEM keystore
# reads them) under DIR, with OpenSSL. The CA's key stays there, 0600, to sign a new broker
# certificate (delete broker.pem and run again); ca.pem is readable by all.
make_kafka_tls() {
    (
        umask 077
        mkdir -p "$1"
        cd "$1" || exit 1
        if [ ! -s ca.pem ]; then
            openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 3650 \
                -subj "/CN=ftgo-local-ca" -addext "basicConstraints=critical,CA:TRUE" \
                -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null || exit 1
        fi
        openssl req -newkey rsa:2048 -nodes -keyout broker.key -out broker.csr \
            -subj "/CN=ftgo-broker" 2>/dev/null || exit 1
        printf '%s\n' "subjectAltName=IP:127.0.0.1,DNS:localhost" \
            "extendedKeyUsage=serverAuth,clientAuth" >broker.ext
        openssl x509 -req -in broker.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 825 \
            -extfile broker.ext -out broker.crt 2>/dev/null || exit 1
        cat broker.key broker.crt >broker.pem
        rm -f broker.key broker.csr broker.ext broker.crt ca.srl
        chmod 644 ca.pem
    )
}

# kafka_format_scram SECRETS_DIR: the StorageTool's --add-scram arguments, a word each, for the
# two principals a new cluster needs before any other can be given one: the broker itself and
# the provisioning principal (passwords in SECRETS_DIR/kafka/NAME). They are on the tool's
# command line for the second it runs: it takes SCRAM credentials no other way
# (docs/security.md).
kafka_format_scram() {
    local name
    for name in ftgo-broker ftgo-admin; do
        printf -- '--add-scram SCRAM-SHA-512=[name=%s,password=%s] ' "$name" "$(cat "$1/kafka/$name")"
    done
}

# kafka_client_properties USER SECRETS_DIR: a Java client's settings (Kafka's console tools,
# PlatformAdmin) for USER over SASL_SSL (its password in SECRETS_DIR/kafka/USER), trusting the
# CA of SECRETS_DIR/tls/ca.pem.
kafka_client_properties() {
    cat <<PROPERTIES
# Generated for $1; holds its password.
security.protocol=SASL_SSL
sasl.mechanism=SCRAM-SHA-512
sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username="$1" password="$(cat "$2/kafka/$1")";
ssl.truststore.type=PEM
ssl.truststore.location=$2/tls/ca.pem
PROPERTIES
}

# postgres_setup_script SETUP_SQL PASSWORD_DIR ROLE...: setup.sql preceded by the psql variable
# it takes the roles' passwords in (`role_passwords`, from PASSWORD_DIR/ROLE each), for psql's
# stdin: passwords are never on a command line.
postgres_setup_script() {
    local sql="$1" dir="$2" role passwords=""
    shift 2
    for role in "$@"; do passwords+="$role=$(cat "$dir/$role") "; done
    printf '\\set role_passwords %s\n' "'${passwords% }'"
    cat "$sql"
}
