// Package offlinetest builds collection media for tests and benchmarks:
// good records through the real collector, and a hostile set.
package offlinetest
