// Package httpx holds the small HTTP helpers the relay and central admin APIs
// share: JSON answers, stable error bodies and bearer-token checks.
package httpx
