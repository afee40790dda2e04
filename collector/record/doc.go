// Package record defines the envelope every piece of agent data travels in
// (DESIGN.md §5), its payload types, validation with stable reason codes, and
// the content hash used to detect a sequence number replayed with different
// content.
package record
