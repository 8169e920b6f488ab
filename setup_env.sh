# Database-mode environment for panacea-locust. Source it, do not run it:
#
#     source setup_env.sh
#
# Every variable keeps a value you exported before; otherwise it gets a loopback default.
# No real host name or password lives in this repository: point CLICKHOUSE_HOST at your
# server and set the password yourself, preferably without leaving it in shell history:
#
#     read -rs CLICKHOUSE_PASSWORD && export CLICKHOUSE_PASSWORD
#
# Then check what database mode would load:  python setup_and_test.py

# ClickHouse connection (native protocol)
export CLICKHOUSE_HOST="${CLICKHOUSE_HOST:-127.0.0.1}"
export CLICKHOUSE_PORT="${CLICKHOUSE_PORT:-9000}"
export CLICKHOUSE_DATABASE="${CLICKHOUSE_DATABASE:-panacea}"
export CLICKHOUSE_USER="${CLICKHOUSE_USER:-default}"
export CLICKHOUSE_PASSWORD="${CLICKHOUSE_PASSWORD:-}"
export CLICKHOUSE_CONNECT_TIMEOUT="${CLICKHOUSE_CONNECT_TIMEOUT:-5}"
export CLICKHOUSE_QUERY_TIMEOUT="${CLICKHOUSE_QUERY_TIMEOUT:-30}"

# Database integration control
export USE_DATABASE_DATA="${USE_DATABASE_DATA:-true}"
export DB_USERS_LIMIT="${DB_USERS_LIMIT:-1000}"
export DB_BUNDLE_IDS_LIMIT="${DB_BUNDLE_IDS_LIMIT:-500}"
export DB_COMBO_IDS_LIMIT="${DB_COMBO_IDS_LIMIT:-100}"
export DB_SFDC_CASES_LIMIT="${DB_SFDC_CASES_LIMIT:-200}"

if [ -n "$CLICKHOUSE_PASSWORD" ]; then _panacea_pw="***"; else _panacea_pw="(none set)"; fi
echo "panacea-locust database mode: ClickHouse ${CLICKHOUSE_HOST}:${CLICKHOUSE_PORT}," \
     "database ${CLICKHOUSE_DATABASE}, user ${CLICKHOUSE_USER}, password ${_panacea_pw}"
echo "USE_DATABASE_DATA=${USE_DATABASE_DATA} DB_USERS_LIMIT=${DB_USERS_LIMIT}" \
     "DB_BUNDLE_IDS_LIMIT=${DB_BUNDLE_IDS_LIMIT} DB_COMBO_IDS_LIMIT=${DB_COMBO_IDS_LIMIT}" \
     "DB_SFDC_CASES_LIMIT=${DB_SFDC_CASES_LIMIT}"
unset _panacea_pw
# Run directly (not sourced), the exports vanish with this shell: say so.
(return 0 2>/dev/null) || echo "note: run 'source setup_env.sh' so the variables stay set" >&2
