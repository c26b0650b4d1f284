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
# Bounded by a count of inputs, about 20 s each here: Go 1.26's fuzzing coordinator can fail
# a target with "context deadline exceeded" when a -fuzztime duration ends while a worker is
# busy (go.dev/issue/75804, fixed in Go 1.27); a count has no deadline to race.
go test -run '^$' -fuzz '^FuzzDispatch$' -fuzztime "${GLOW_FUZZ_TIME:-40000x}" ./internal/dispatch/
go test -run '^$' -fuzz '^FuzzSocketIOPacket$' -fuzztime "${GLOW_FUZZ_TIME:-15000x}" ./ws/
