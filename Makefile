# edgesync — see README.md. Every target works on a fresh machine with Go installed.
GO       ?= go
BIN      ?= bin/edgesync
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS  := -X main.version=$(VERSION)
PKGS     := ./...
FUZZTIME ?= 20s
CHAOS_DURATION ?= 10m
CHAOS_SEEDS ?= $(shell od -An -N3 -tu4 /dev/urandom | tr -d ' ')

.PHONY: docs all build build-windows windows-check test-windows demo test fmt-check vet unit fullsize bench bench-quick fuzz chaos crash soak clean

all: build

build:
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN) ./cmd/edgesync

## build-windows: the Windows binaries (agent, offline collector, client commands) for amd64 and arm64
build-windows:
	GOOS=windows GOARCH=amd64 $(GO) build -trimpath -ldflags "$(LDFLAGS)" -o bin/windows-amd64/edgesync.exe ./cmd/edgesync
	GOOS=windows GOARCH=arm64 $(GO) build -trimpath -ldflags "$(LDFLAGS)" -o bin/windows-arm64/edgesync.exe ./cmd/edgesync

## windows-check: the whole tree builds and vets for Windows (part of make test)
windows-check:
	GOOS=windows GOARCH=amd64 $(GO) build -o /dev/null ./cmd/edgesync
	GOOS=windows GOARCH=amd64 $(GO) vet $(PKGS)

## test-windows: the Windows binary under Wine against a Linux central and relay: the agent once and
##               as a service, a kit's collect.cmd and offline collect, imports (installs Wine when missing)
test-windows: build-windows
	./test/windows/run.sh

## demo: a 1-node central, a 3-node relay site and simulated agents on 127.0.0.1 (Ctrl-C stops it)
demo: build
	./$(BIN) demo

## test: gofmt check, go vet, the race-enabled test suite (unit + system tests on loopback), and
##       the full-size distribution test, which is too slow under -race (it skips itself there)
test: fmt-check vet windows-check unit fullsize

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet $(PKGS)

unit:
	$(GO) test -race -timeout 9m $(PKGS)

fullsize:
	$(GO) test -run '^TestDistributionFullSize$$' -count=1 -timeout 5m ./test/

## bench: throughput and memory benchmarks with their baselines (see docs/benchmarks.md)
bench:
	$(GO) test -run '^$$' -bench . -benchmem -benchtime 1x -timeout 30m ./test/bench/
	$(GO) test -run '^$$' -bench . -benchmem -timeout 20m ./sync/... ./internal/raftnode/
	$(GO) test -run '^$$' -bench BenchmarkCentralApply -benchtime 1x -timeout 10m ./central/

## bench-quick: the headline figures at smaller sizes in under 5 minutes, one line each,
##              name=value unit baseline=value ratio=value (test/bench/quick.sh)
bench-quick:
	GO=$(GO) ./test/bench/quick.sh

## fuzz: each fuzz target for FUZZTIME
fuzz:
	@set -e; for pkg in $$($(GO) list $(PKGS)); do \
	  for f in $$($(GO) test -list 'Fuzz.*' $$pkg | grep -E '^Fuzz' || true); do \
	    echo "== $$pkg $$f"; $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$pkg; \
	  done; \
	done

## crash: SIGKILL in the middle of snapshot, log truncation, Badger compaction, cache fill and offline
##        import (quarantined from make test while its state-divergence finding is open)
crash:
	EDGESYNC_CRASH=1 $(GO) test -race -count=$(or $(CRASH_COUNT),3) -run '^TestCrash_StorageOperations$$' -v -timeout 30m ./test/

## chaos: nodes as processes under load and seeded faults for CHAOS_DURATION, once per seed in CHAOS_SEEDS
##        (e.g. make chaos CHAOS_SEEDS="1 2 3 4 5"); reports land in test/artifacts/chaos-SEED.json
chaos:
	@set -e; mkdir -p test/artifacts; for s in $(CHAOS_SEEDS); do \
	  echo "== chaos seed $$s for $(CHAOS_DURATION)"; \
	  CHAOS_SEED=$$s CHAOS_DURATION=$(CHAOS_DURATION) CHAOS_REPORT=$(CURDIR)/test/artifacts/chaos-$$s.json CHAOS_NODE_LOG=$(CURDIR)/test/artifacts/chaos-$$s-nodes.log CHAOS_KEEP_DATA=$(CURDIR)/test/artifacts \
	    $(GO) test -run '^TestChaos$$' -count=1 -v -timeout 90m ./test/chaos/ 2>&1 | tee test/artifacts/chaos-$$s.log | grep -E '^(=== RUN|--- |PASS|FAIL|ok )|chaos seed|SEED ' ; \
	  grep -q -- '--- PASS: TestChaos' test/artifacts/chaos-$$s.log || { echo "chaos seed $$s FAILED: see test/artifacts/chaos-$$s.log"; exit 1; }; \
	done

## soak: the chaos deployment under steady load for SOAK_DURATION with a fault every SOAK_FAULT_EVERY (5m);
##       samples every node every SOAK_INTERVAL (1m) and fails if RSS, goroutines, open files, Badger
##       sizes or outbox depth grow without bound; report and plot in test/artifacts/soak.{json,png}
SOAK_DURATION ?= 1h
soak:
	@mkdir -p test/artifacts
	SOAK_DURATION=$(SOAK_DURATION) SOAK_REPORT=$(CURDIR)/test/artifacts/soak.json SOAK_PLOT=$(CURDIR)/test/artifacts/soak.png \
	  $(GO) test -run '^TestSoak$$' -count=1 -v -timeout 24h ./test/chaos/ 2>&1 | tee test/artifacts/soak.log | grep -E '^(=== RUN|--- |PASS|FAIL|ok )|SOAK |bounded=false'; \
	grep -q -- '--- PASS: TestSoak' test/artifacts/soak.log

clean:
	rm -rf bin

## docs: render docs/architecture.dot to docs/architecture.svg (Graphviz as WebAssembly; no install)
docs:
	cd docs/gen && $(GO) run . ../architecture.dot ../architecture.svg
