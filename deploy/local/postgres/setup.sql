-- Roles, databases and schemas of the local platform. Run by deploy/local/up as the cluster's
-- superuser on every start; every statement is idempotent.
--
--   ftgo_admin       owns the `ftgo` database; may create databases (tests make throwaway ones);
--                    may replicate (tests of the log-tailing relay), the only role that may.
--   ftgo_<service>_owner
--                    the migration role: owns the schema `ftgo_<service>` in `ftgo` and every
--                    table in it (`<service>-service migrate` runs as it), nothing else: no
--                    other schema, no `public`, no database or role creation, no replication.
--   ftgo_<service>   the runtime role the service runs as: reads and writes the rows of its own
--                    schema's tables (DML), and may create nothing, not even there. No
--                    replication here: deploy/local/services start gives REPLICATION (and its
--                    owner CREATE on the database, for the publication) to a service that runs
--                    the log-tailing relay (FTGO_<SERVICE>_RELAY=tailing), and takes them back
--                    when it no longer does. Its default search_path ("$user", public) finds
--                    its own schema.
--   apicurio         owns the `apicurio` database, the schema registry's storage.
--
-- Given by the caller as psql variables:
--   :service_roles   the runtime roles, separated by spaces (one `ftgo_<name>` per crate under
--                    services/);
--   :role_passwords  `role=password` pairs separated by spaces, one per role above: set on
--                    every run (deploy/local/up makes them at random and keeps them under the
--                    state directory; it gives them on stdin, not on a command line).

\set ON_ERROR_STOP on

SELECT format('CREATE ROLE %I LOGIN', r)
FROM unnest(ARRAY['ftgo_admin', 'apicurio'] || string_to_array(:'service_roles', ' ')
            || ARRAY(SELECT s || '_owner' FROM unnest(string_to_array(:'service_roles', ' ')) AS s)) AS r
WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = r)
\gexec

SELECT format('ALTER ROLE %I PASSWORD %L', split_part(p, '=', 1), substr(p, strpos(p, '=') + 1))
FROM unnest(string_to_array(:'role_passwords', ' ')) AS p
\gexec

ALTER ROLE ftgo_admin CREATEDB;

-- A log-tailing relay reads an outbox through logical replication; tests do it as ftgo_admin on
-- their own databases. Taken back from the others on every start (every role had it once);
-- deploy/local/services start gives it to the services that tail.
ALTER ROLE ftgo_admin REPLICATION;
SELECT format('ALTER ROLE %I NOREPLICATION', r)
FROM unnest(ARRAY['apicurio'] || string_to_array(:'service_roles', ' ')
            || ARRAY(SELECT s || '_owner' FROM unnest(string_to_array(:'service_roles', ' ')) AS s)) AS r
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

-- The schema and its tables belong to the migration role: before the runtime role lost it, it
-- owned them (REASSIGN OWNED hands them over; afterwards it finds nothing to hand over). The
-- runtime role gets the rows: of the tables there now, and (default privileges) of those the
-- migration role creates later.
SELECT format('GRANT CONNECT ON DATABASE ftgo TO %I, %I', r, r || '_owner'),
       format('CREATE SCHEMA IF NOT EXISTS %I AUTHORIZATION %I', r, r || '_owner'),
       format('ALTER SCHEMA %I OWNER TO %I', r, r || '_owner'),
       format('REASSIGN OWNED BY %I TO %I', r, r || '_owner'),
       format('ALTER ROLE %I SET search_path = %I', r || '_owner', r),
       format('REVOKE ALL ON SCHEMA %I FROM PUBLIC', r),
       format('GRANT USAGE ON SCHEMA %I TO %I', r, r),
       format('GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA %I TO %I', r, r),
       format('GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA %I TO %I', r, r),
       format('ALTER DEFAULT PRIVILEGES FOR ROLE %I IN SCHEMA %I
                   GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO %I', r || '_owner', r, r),
       format('ALTER DEFAULT PRIVILEGES FOR ROLE %I IN SCHEMA %I
                   GRANT USAGE, SELECT, UPDATE ON SEQUENCES TO %I', r || '_owner', r, r)
FROM unnest(string_to_array(:'service_roles', ' ')) AS r
\gexec
