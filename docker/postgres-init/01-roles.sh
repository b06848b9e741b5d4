#!/bin/sh
# First start of the PostgreSQL container: Temporal and the registry get roles of their own, each
# owning only its databases (the container's superuser stays for administration). psql variables
# keep the passwords out of the SQL text.
set -eu
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres \
  -v temporal_pw="$TEMPORAL_DB_PASSWORD" -v registry_pw="$REGISTRY_DB_PASSWORD" <<'SQL'
CREATE ROLE temporal LOGIN PASSWORD :'temporal_pw';
CREATE ROLE registry LOGIN PASSWORD :'registry_pw';
CREATE DATABASE temporal OWNER temporal;
CREATE DATABASE temporal_visibility OWNER temporal;
CREATE DATABASE registry OWNER registry;
SQL
