#!/bin/sh
# quick.sh is `make bench-quick`: the headline figures of docs/benchmarks.md at
# smaller sizes, each next to the baseline measured in the same run, one line
# each on stdout so a script can compare two runs:
#
#	name=value unit baseline=value ratio=value
#
# It runs the same benchmarks as `make bench` (fsync on everywhere), sized by
# the BENCH_* variables below; the go test output goes to $BENCH_QUICK_LOG
# (default a temp file, removed unless a benchmark fails).
set -eu
GO=${GO:-go}
export BENCH_AGENTS="${BENCH_AGENTS:-200}" BENCH_RECORDS="${BENCH_RECORDS:-40000}"
export BENCH_OFFLINE_RECORDS="${BENCH_OFFLINE_RECORDS:-2000}" BENCH_BLOB_MB="${BENCH_BLOB_MB:-32}"
export BENCH_CENTRAL_RECORDS="${BENCH_CENTRAL_RECORDS:-30000}"
log=${BENCH_QUICK_LOG:-$(mktemp)}

run() {
	if ! "$GO" test -run '^$' -benchtime "$@" >>"$log" 2>&1; then
		echo "bench-quick: go test $* failed; output in $log" >&2
		exit 1
	fi
}
: >"$log"
run 1x -bench '^(BenchmarkIngest|BenchmarkUplinkDrain|BenchmarkBlobUpstreamQUIC|BenchmarkOfflineImport)$' -timeout 10m ./test/bench/
run 1x -bench '^BenchmarkCentralApply$' -timeout 5m ./central/
run "${BENCH_RECORDS}x" -bench '^BenchmarkDrain$' -timeout 5m ./sync/uplink/

# get BENCH UNIT: the value reported for UNIT by benchmark BENCH (without -GOMAXPROCS).
get() {
	awk -v n="$1" -v u="$2" '$1 ~ /^Benchmark/ { name = $1; sub(/-[0-9]+$/, "", name)
		if (name == n) for (i = 3; i < NF; i++) if ($(i + 1) == u) { print $i; exit } }' "$log"
}
line() { # name value unit baseline
	awk -v n="$1" -v v="$2" -v u="$3" -v b="$4" 'BEGIN {
		r = (v != "" && b + 0 > 0) ? sprintf("%.3f", v / b) : "NA"
		printf "%s=%s %s baseline=%s ratio=%s\n", n, (v == "" ? "NA" : v), u, (b == "" ? "NA" : b), r }'
}
line site_ingest "$(get BenchmarkIngest/site-3node records/s)" rec/s "$(get BenchmarkIngest/badger-1node-baseline records/s)"
line central_apply "$(get BenchmarkCentralApply/raft-1node records/s)" rec/s "$(get BenchmarkCentralApply/badger-baseline records/s)"
line uplink_drain_quic "$(get BenchmarkUplinkDrain/quic records/s)" rec/s "$(get BenchmarkDrain/quic records/s)"
line uplink_drain_tcp "$(get BenchmarkUplinkDrain/tcp records/s)" rec/s "$(get BenchmarkDrain/tcp records/s)"
line upstream_fetch_quic "$(get BenchmarkBlobUpstreamQUIC/quic MB/s)" MiB/s "$(get BenchmarkBlobUpstreamQUIC/tcp MB/s)"
line offline_import "$(get BenchmarkOfflineImport import_records/s)" rec/s "$(get BenchmarkOfflineImport verify_records/s)"
line offline_verify "$(get BenchmarkOfflineImport verify_MB/s)" MB/s "$(get BenchmarkOfflineImport 'zstd|tar_MB/s')"
line relay_vmhwm "$(get BenchmarkIngest/site-3node relay-peak-RSS-MB)" MiB 256
[ -n "${BENCH_QUICK_LOG:-}" ] || rm -f "$log"
