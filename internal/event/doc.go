// Package event defines the events relays and central raise, numbered after
// the original product's event list where one exists (DESIGN.md §10).
package event
