-- Roles, databases and schemas of the local platform. Run by deploy/local/up as the cluster's
-- superuser on every start; every statement is idempotent. Passwords are for local use only.
--
--   ftgo_admin       owns the `ftgo` database; may create databases (tests make throwaway ones);
--                    may replicate (tests of the log-tailing relay), the only role that may.
--   ftgo_<service>   may connect to `ftgo` and owns the schema of its own name there, nothing
--                    else: no other schema, no `public`, no database or role creation, no
--                    replication (no service runs the log-tailing relay; one that did would be
--                    given REPLICATION here, and pg_hba's replication line, platform.sh). A
--                    role's default search_path ("$user", public) lands its tables in its own
--                    schema.
--   apicurio         owns the `apicurio` database, the schema registry's storage.

-- :service_roles, the services' roles separated by spaces, is given by deploy/local/up (one
-- `ftgo_<name>` per crate under services/).

\set ON_ERROR_STOP on

SELECT format('CREATE ROLE %I LOGIN PASSWORD %L', r, r)
FROM unnest(ARRAY['ftgo_admin', 'apicurio'] || string_to_array(:'service_roles', ' ')) AS r
WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = r)
\gexec

ALTER ROLE ftgo_admin CREATEDB;

-- A log-tailing relay reads an outbox through logical replication; tests do it as ftgo_admin on
-- their own databases. Taken back from roles given it before (every role had it once).
ALTER ROLE ftgo_admin REPLICATION;
SELECT format('ALTER ROLE %I NOREPLICATION', r)
FROM unnest(ARRAY['apicurio'] || string_to_array(:'service_roles', ' ')) AS r
\gexec

SELECT 'CREATE DATABASE ftgo OWNER ftgo_admin'
WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'ftgo')
\gexec

SELECT 'CREATE DATABASE apicurio OWNER apicurio'
WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'apicurio')
\gexec

REVOKE ALL ON DATABASE ftgo FROM PUBLIC;
REVOKE ALL ON DATABASE apicurio FROM PUBLIC;
GRANT CONNECT, TEMPORARY ON DATABASE apicurio TO apicurio;

\connect ftgo

REVOKE ALL ON SCHEMA public FROM PUBLIC;
GRANT ALL ON SCHEMA public TO ftgo_admin;

SELECT format('GRANT CONNECT ON DATABASE ftgo TO %I', r),
       format('CREATE SCHEMA IF NOT EXISTS %I AUTHORIZATION %I', r, r),
       format('REVOKE ALL ON SCHEMA %I FROM PUBLIC', r)
FROM unnest(string_to_array(:'service_roles', ' ')) AS r
\gexec
