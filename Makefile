# edgesync — see README.md. Every target works on a fresh machine with Go installed.
GO       ?= go
BIN      ?= bin/edgesync
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS  := -X main.version=$(VERSION)
PKGS     := ./...
FUZZTIME ?= 20s

.PHONY: all build demo test fmt-check vet unit fullsize bench fuzz clean

all: build

build:
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN) ./cmd/edgesync

## demo: a 1-node central, a 3-node relay site and simulated agents on 127.0.0.1 (Ctrl-C stops it)
demo: build
	./$(BIN) demo

## test: gofmt check, go vet, the race-enabled test suite (unit + system tests on loopback), and
##       the full-size distribution test, which is too slow under -race (it skips itself there)
test: fmt-check vet unit fullsize

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

## fuzz: each fuzz target for FUZZTIME
fuzz:
	@set -e; for pkg in $$($(GO) list $(PKGS)); do \
	  for f in $$($(GO) test -list 'Fuzz.*' $$pkg | grep -E '^Fuzz' || true); do \
	    echo "== $$pkg $$f"; $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$pkg; \
	  done; \
	done

clean:
	rm -rf bin
