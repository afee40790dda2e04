// Package bench measures the site against its baselines in one run:
//
//	go test -run '^$' -bench . -benchtime 1x ./test/bench/
//
// Nodes run as separate processes (test/procnet) so a relay node's peak RSS
// is its own. Figures go to docs/benchmarks.md.
package bench
