#!/usr/bin/env bash
# Makes Redis and PostgreSQL reachable for `make test` and CI, and prints the settings to use them:
#
#   eval "$(scripts/test-services.sh)"     # then go test ...
#
# For each service: when its variable (REDIS_URL, DATABASE_URL) is already set, nothing is done.
# Otherwise, when 127.0.0.1:6379 / 127.0.0.1:5432 does not answer, the installed server is started
# (redis-server daemonized without persistence; the PostgreSQL cluster with pg_ctlcluster), and once it
# answers, and accepts the test user, an `export VAR='url'` line is printed on stdout. When a service
# cannot be had this way, nothing is printed for it and pkg/testenv falls back to starting its own
# server from the binaries (or testcontainers), so this script never fails the build.
#
# --install: first install redis-server, postgresql (and ffmpeg, for the STT tests' decode checks)
# with apt-get when their binaries are missing
# (for a fresh CI machine; needs root).
#
# Diagnostics go to stderr; stdout carries only the export lines.
set -uo pipefail

# The ports and the cluster name can be moved for testing this script beside running servers.
REDIS_HOST=127.0.0.1 REDIS_PORT=${CW_TEST_REDIS_PORT:-6379}
PG_HOST=127.0.0.1 PG_PORT=${CW_TEST_PG_PORT:-5432} PG_CLUSTER=${CW_TEST_PG_CLUSTER:-main}
REDIS_TEST_URL="redis://${REDIS_HOST}:${REDIS_PORT}/0"
PG_TEST_URL="postgres://postgres@${PG_HOST}:${PG_PORT}/postgres?sslmode=disable"
WAIT_SECONDS=30

log() { echo "test-services: $*" >&2; }

# port_open HOST PORT: something accepts TCP connections there.
port_open() { (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; }

# wait_for DESCRIPTION COMMAND...: retry COMMAND until it succeeds or WAIT_SECONDS pass.
wait_for() {
	local what=$1; shift
	local deadline=$((SECONDS + WAIT_SECONDS))
	until "$@" >/dev/null 2>&1; do
		if ((SECONDS >= deadline)); then
			log "$what did not answer within ${WAIT_SECONDS}s"
			return 1
		fi
		sleep 0.2
	done
}

redis_answers() {
	if command -v redis-cli >/dev/null; then
		[[ "$(redis-cli -h "$REDIS_HOST" -p "$REDIS_PORT" ping 2>/dev/null)" == PONG ]]
	else
		port_open "$REDIS_HOST" "$REDIS_PORT"
	fi
}

pg_bin() {
	local name=$1 dir
	if command -v "$name" >/dev/null; then command -v "$name"; return; fi
	for dir in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
		[[ -x "$dir/$name" ]] && { echo "$dir/$name"; return; }
	done
	return 1
}

pg_answers() {
	local isready
	if isready=$(pg_bin pg_isready); then
		"$isready" -q -h "$PG_HOST" -p "$PG_PORT"
	else
		port_open "$PG_HOST" "$PG_PORT"
	fi
}

# pg_accepts_test_user: the URL we would print works (trust or peer-less auth for postgres).
pg_accepts_test_user() {
	local psql
	psql=$(pg_bin psql) || return 0 # cannot check; testenv will report a failure clearly
	PGCONNECT_TIMEOUT=5 "$psql" "$PG_TEST_URL" -XAtqc 'SELECT 1' >/dev/null 2>&1
}

install_missing() {
	local pkgs=()
	command -v redis-server >/dev/null || pkgs+=(redis-server)
	pg_bin postgres >/dev/null || pkgs+=(postgresql)
	# The STT tests decode every audio window with ffmpeg when it is installed (fixtures are committed).
	command -v ffmpeg >/dev/null || pkgs+=(ffmpeg)
	((${#pkgs[@]})) || return 0
	if [[ $(id -u) != 0 ]]; then
		log "not root: cannot install ${pkgs[*]}"
		return 0
	fi
	log "installing ${pkgs[*]}"
	export DEBIAN_FRONTEND=noninteractive
	{ apt-get update -qq && apt-get install -y -qq --no-install-recommends "${pkgs[@]}"; } >&2 ||
		log "installing ${pkgs[*]} failed"
}

ensure_redis() {
	if [[ -n "${REDIS_URL:-}" ]]; then
		log "REDIS_URL is set; leaving Redis alone"
		return
	fi
	if ! redis_answers; then
		if ! command -v redis-server >/dev/null; then
			log "Redis is not running on ${REDIS_HOST}:${REDIS_PORT} and redis-server is not installed"
			return
		fi
		log "starting redis-server on ${REDIS_HOST}:${REDIS_PORT}"
		redis-server --daemonize yes --bind "$REDIS_HOST" --port "$REDIS_PORT" --save "" --appendonly no \
			--logfile "/tmp/cw-test-redis-${REDIS_PORT}.log" >&2 || { log "redis-server failed to start"; return; }
		wait_for Redis redis_answers || return
	fi
	echo "export REDIS_URL='${REDIS_TEST_URL}'"
}

ensure_postgres() {
	if [[ -n "${DATABASE_URL:-}" ]]; then
		log "DATABASE_URL is set; leaving PostgreSQL alone"
		return
	fi
	if ! pg_answers; then
		local version
		version=$(ls /etc/postgresql 2>/dev/null | sort -V | tail -n 1)
		if [[ -z "$version" ]] || ! command -v pg_ctlcluster >/dev/null; then
			log "PostgreSQL is not running on ${PG_HOST}:${PG_PORT} and no cluster is installed"
			return
		fi
		log "starting PostgreSQL cluster ${version}/${PG_CLUSTER}"
		pg_ctlcluster --skip-systemctl-redirect "$version" "$PG_CLUSTER" start >&2 ||
			{ log "pg_ctlcluster ${version} ${PG_CLUSTER} start failed"; return; }
		wait_for PostgreSQL pg_answers || return
	fi
	if ! pg_accepts_test_user; then
		log "PostgreSQL on ${PG_HOST}:${PG_PORT} refuses ${PG_TEST_URL} (pg_hba.conf needs trust for postgres on 127.0.0.1)"
		return
	fi
	echo "export DATABASE_URL='${PG_TEST_URL}'"
}

if [[ "${1:-}" == --install ]]; then
	install_missing
fi
ensure_redis
ensure_postgres
exit 0
