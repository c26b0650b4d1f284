#!/usr/bin/env bash
# with-postgres.sh COMMAND [ARGS…]
#
# Runs COMMAND with a throwaway PostgreSQL cluster: a new data directory, a free port on
# 127.0.0.1, trust authentication, and GLOW_TEST_POSTGRES_URL pointing at it. The cluster is
# stopped and deleted when COMMAND ends, whatever its exit status.
#
# initdb refuses to run as root, so as root the cluster runs as the "postgres" user (created
# if missing). Without PostgreSQL binaries the command runs without the variable and the
# PostgreSQL suites skip — unless GLOW_TEST_REQUIRE_POSTGRES=1, which makes that an error.
set -euo pipefail

find_bindir() {
	if [[ -n "${PG_BINDIR:-}" && -x "$PG_BINDIR/initdb" ]]; then echo "$PG_BINDIR"; return; fi
	if command -v pg_config >/dev/null 2>&1 && [[ -x "$(pg_config --bindir)/initdb" ]]; then pg_config --bindir; return; fi
	local d
	for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
		if [[ -x "$d/initdb" ]]; then echo "$d"; return; fi
	done
}

bindir=$(find_bindir || true)
if [[ -z "$bindir" ]]; then
	if [[ "${GLOW_TEST_REQUIRE_POSTGRES:-}" == 1 ]]; then
		echo "with-postgres: no PostgreSQL binaries found and GLOW_TEST_REQUIRE_POSTGRES=1" >&2
		exit 1
	fi
	echo "with-postgres: no PostgreSQL binaries found: the PostgreSQL suites will be SKIPPED" >&2
	exec "$@"
fi

as_pg=()
if [[ $(id -u) == 0 ]]; then
	if ! id postgres >/dev/null 2>&1; then
		useradd --system --home-dir /var/lib/postgresql --shell /bin/false postgres
	fi
	as_pg=(runuser -u postgres --)
fi

dir=$(mktemp -d /tmp/glow-pg.XXXXXX)
chmod 755 "$dir"
[[ ${#as_pg[@]} -gt 0 ]] && chown postgres: "$dir"

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()' 2>/dev/null ||
	node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')

cleanup() {
	"${as_pg[@]}" "$bindir/pg_ctl" -D "$dir/data" -m immediate stop >/dev/null 2>&1 || true
	rm -rf "$dir"
}
trap cleanup EXIT

"${as_pg[@]}" "$bindir/initdb" -D "$dir/data" -U postgres --auth=trust -E UTF8 --no-sync >"$dir/initdb.log" 2>&1 ||
	{ cat "$dir/initdb.log" >&2; exit 1; }
"${as_pg[@]}" "$bindir/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
	-o "-c listen_addresses=127.0.0.1 -p $port -k $dir -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=300" \
	start >/dev/null || { cat "$dir/server.log" >&2; exit 1; }

export GLOW_TEST_POSTGRES_URL="postgres://postgres@127.0.0.1:$port/postgres?sslmode=disable"
echo "with-postgres: PostgreSQL $("$bindir/postgres" --version | awk '{print $3}') on 127.0.0.1:$port" >&2
set +e
"$@"
status=$?
set -e
exit $status
