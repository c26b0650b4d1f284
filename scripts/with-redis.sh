#!/usr/bin/env bash
# with-redis.sh COMMAND [ARGS…]
#
# Runs COMMAND with a throwaway Redis: a free port on 127.0.0.1, no persistence, and
# GLOW_TEST_REDIS_URL pointing at it. Redis is stopped when COMMAND ends, whatever its exit
# status. Without redis-server the command runs without the variable and the cluster tests
# skip — unless GLOW_TEST_REQUIRE_REDIS=1, which makes that an error.
set -euo pipefail

if ! command -v redis-server >/dev/null 2>&1; then
	if [[ "${GLOW_TEST_REQUIRE_REDIS:-}" == 1 ]]; then
		echo "with-redis: no redis-server found and GLOW_TEST_REQUIRE_REDIS=1" >&2
		exit 1
	fi
	echo "with-redis: no redis-server found: the cluster tests will be SKIPPED" >&2
	exec "$@"
fi

dir=$(mktemp -d /tmp/glow-redis.XXXXXX)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()' 2>/dev/null ||
	node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')

redis-server --bind 127.0.0.1 --port "$port" --save '' --appendonly no --dir "$dir" \
	--daemonize yes --pidfile "$dir/redis.pid" --logfile "$dir/redis.log" >/dev/null
cleanup() {
	if [[ -f "$dir/redis.pid" ]]; then kill "$(cat "$dir/redis.pid")" 2>/dev/null || true; fi
	rm -rf "$dir"
}
trap cleanup EXIT
for _ in $(seq 100); do
	if redis-cli -h 127.0.0.1 -p "$port" ping >/dev/null 2>&1; then break; fi
	sleep 0.05
done
redis-cli -h 127.0.0.1 -p "$port" ping >/dev/null || { cat "$dir/redis.log" >&2; exit 1; }

export GLOW_TEST_REDIS_URL="redis://127.0.0.1:$port/0"
echo "with-redis: Redis $(redis-server --version | awk '{print $3}' | sed 's/v=//') on 127.0.0.1:$port" >&2
set +e
"$@"
status=$?
set -e
exit $status
