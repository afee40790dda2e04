// Package apitest provides an in-memory api.Backend and a test PKI (CA +
// relay certificate) for tests of the agent API, the agent and its callers.
// It is for tests only.
package apitest
