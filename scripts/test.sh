#!/usr/bin/env bash
# test.sh: what `make test` runs (inside scripts/with-postgres.sh, which provides
# GLOW_TEST_POSTGRES_URL): vet, every package's tests, then the concurrent packages again
# under the race detector.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== go vet"
go vet ./...

echo "== go test"
go test -count=1 ./...

echo "== go test -race (transports, dispatcher, event log and runs)"
go test -race -count=1 ./api/... ./ws/... ./internal/dispatch/... ./internal/events/... ./internal/jobs/...

echo "== fuzz, bounded (the dispatcher's decode and validate path; the socket.io packet path)"
go test -run '^$' -fuzz '^FuzzDispatch$' -fuzztime "${GLOW_FUZZ_TIME:-20s}" ./internal/dispatch/
go test -run '^$' -fuzz '^FuzzSocketIOPacket$' -fuzztime "${GLOW_FUZZ_TIME:-20s}" ./ws/
