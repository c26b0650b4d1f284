# glow — the two commands that matter: `make run` and `make test`.

GO ?= go
BIN := bin/glow

.PHONY: build run test generate check-generated lint bench node-deps clean

## build: compile the glow binary into bin/
build:
	$(GO) build -o $(BIN) ./cmd/glow

## run: build and start the server on the embedded database (./data)
run: build
	./$(BIN) serve

## test: every suite, on SQLite and on a throwaway PostgreSQL cluster, with the Node clients
test: node-deps
	./scripts/with-postgres.sh ./scripts/with-redis.sh ./scripts/test.sh

## generate: regenerate gen/ and the TypeScript client's clients/ts/src/*.gen.ts from openapi.yaml
generate: clients/ts/node_modules/.installed
	$(GO) generate .
	npm run --prefix clients/ts --silent generate

## check-generated: fail when gen/ or clients/ts/src/ does not match openapi.yaml
check-generated: generate
	@if [ -n "$$(git status --porcelain -- gen/ clients/ts/src/)" ]; then \
		git status --short -- gen/ clients/ts/src/; \
		echo "generated code is stale: run make generate and commit the result" >&2; exit 1; \
	fi

## lint: gofmt and go vet
lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

## bench: the load generator (HTTP, socket.io, a chat streamed to N sockets and idle sockets' memory, beside the anchors glow is compared with; rewrites docs/BENCHMARKS.md) and the Go benchmarks
bench: bench/node/node_modules/.installed
	$(GO) run ./tools/loadgen -clients 1,10,100,500 -shared-clients 1,10,100 -watchers 1,10,100,500,1000,500@20ms \
		-transports http,socketio,socketio-shared,chat-fanout -duration 7s \
		-anchors node-echo,node-contract,go-echo -anchor-clients 100 -anchor-watchers 1000 -idle-sockets 5000 -cycles 16000 -memory-calls 1000000 \
		-out docs/BENCHMARKS.md
	$(GO) run ./tools/searchbench -rows 100000 -calls 100 -out docs/BENCHMARKS.md
	$(GO) test -run '^$$' -bench . -benchmem ./internal/dispatch/

## node-deps: install the Node test clients (socket.io-client, playwright-core), the TypeScript client's tools and the bench's Node anchors (socket.io)
node-deps: test/node/node_modules/.installed clients/ts/node_modules/.installed bench/node/node_modules/.installed

clients/ts/node_modules/.installed: clients/ts/package.json clients/ts/package-lock.json
	npm ci --prefix clients/ts --no-audit --no-fund
	touch $@

test/node/node_modules/.installed: test/node/package.json test/node/package-lock.json
	npm ci --prefix test/node --no-audit --no-fund
	touch $@

bench/node/node_modules/.installed: bench/node/package.json bench/node/package-lock.json
	npm ci --prefix bench/node --no-audit --no-fund
	touch $@

clean:
	rm -rf bin
