#!/bin/sh
# Run once by the postgres image on an empty data directory (contrib/compose.yaml): the
# roles and the database of docs/install.md, step 4. tollgatectl migrate (the migrate
# service) then grants tollgate_app what the daemons need.
set -eu
psql -v ON_ERROR_STOP=1 --username postgres <<SQL
CREATE ROLE tollgate LOGIN PASSWORD '$TOLLGATE_PG_OWNER_PASSWORD';
CREATE ROLE tollgate_app LOGIN PASSWORD '$TOLLGATE_PG_APP_PASSWORD';
CREATE DATABASE tollgate OWNER tollgate;
SQL
