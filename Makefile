# ClassWaves backend. The two commands a newcomer needs: `make run` and `make test`.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c

GO        ?= go
# Build tools are pinned in tools/go.mod, outside the workspace so their dependencies never move
# the product's; GOWORK=off lets -modfile apply.
TOOL      := GOWORK=off $(GO) tool -modfile=tools/go.mod
BUF       := $(TOOL) buf
# Every module of the workspace: `go test ./...` at the root would skip the others.
MODULES   := $(shell $(GO) list -f '{{.Dir}}/...' -m)
GOFILES    = $(shell git ls-files --cached --others --exclude-standard '*.go' | grep -v '^pkg/api/')

.PHONY: run build test test-short lint generate check-generate bench bench-realtime clean

## run: every service in one process on embedded defaults (HTTP :3000, gRPC :9090)
run:
	$(GO) run ./cmd/classwaves -target=all

## build: the classwaves binary into bin/
build:
	$(GO) build -o bin/classwaves ./cmd/classwaves

## test: every module's tests (starts the local services they need)
test:
	npm ci --prefix services/realtime/clienttest --no-audit --no-fund --loglevel=error
	npm ci --prefix loadtest/node --no-audit --no-fund --loglevel=error
	eval "$$(bash scripts/test-services.sh)"; $(GO) test -count=1 -timeout 20m $(MODULES)
	cd loadtest && GOWORK=off $(GO) test -count=1 -timeout 5m ./...

## lint: buf lint and format, gofmt, go vet, go.mod tidy
lint:
	$(BUF) lint
	$(BUF) format --diff --exit-code
	@out="$$(gofmt -l $(GOFILES))"; if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet $(MODULES)
	$(GO) mod tidy -diff
	cd testcontainers && GOWORK=off $(GO) build -o /dev/null ./... && GOWORK=off $(GO) vet ./...
	cd loadtest && GOWORK=off $(GO) build ./... && GOWORK=off $(GO) vet ./... && GOWORK=off $(GO) mod tidy -diff

## generate: regenerate pkg/api and the OpenAPI document from proto/
generate:
	$(BUF) generate

## check-generate: fail when the committed generated code differs from a fresh generation
check-generate: generate
	git diff --exit-code -- pkg/api gateway/openapi
	@untracked="$$(git ls-files --others --exclude-standard pkg/api gateway/openapi)"; if [ -n "$$untracked" ]; then echo "untracked generated files:"; echo "$$untracked"; exit 1; fi

## bench: benchmarks of every module (figures go in the README)
bench:
	$(GO) test -run '^$$' -bench . -benchmem $(MODULES)

## bench-realtime: Go socketio vs npm socket.io v4 side by side (figures in loadtest/README.md); ARGS=-quick for a short run
bench-realtime:
	npm ci --prefix loadtest/node --no-audit --no-fund --loglevel=error
	cd loadtest && GOWORK=off $(GO) run ./wsbench $(ARGS)

clean:
	rm -rf bin var
