package raftnode

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Every raft log entry raftnode writes is framed as one type byte followed by
// the payload. Application commands pass through untouched.
type entryType uint8

const (
	entryInternal entryType = 0 // raftnode's own commands (internalOp follows)
	entryApp      entryType = 1 // application command for StateMachine.Apply
)

// internalOp is the second byte of an entryInternal entry.
type internalOp uint8

const (
	opSetMeta    internalOp = 1 // set member meta {id, httpAddr}
	opDeleteMeta internalOp = 2 // delete member meta {id}
)

// MaxCommandSize bounds one application command (DESIGN §6: entries ≤ 512 KiB).
const MaxCommandSize = 512 << 10

const maxMetaField = 1024

var errBadCommand = errors.New("malformed command")

func frameApp(cmd []byte) []byte {
	b := make([]byte, 1+len(cmd))
	b[0] = byte(entryApp)
	copy(b[1:], cmd)
	return b
}

type metaCmd struct {
	op       internalOp
	id       string
	httpAddr string
}

func encodeMeta(m metaCmd) []byte {
	b := []byte{byte(entryInternal), byte(m.op)}
	b = binary.AppendUvarint(b, uint64(len(m.id)))
	b = append(b, m.id...)
	if m.op == opSetMeta {
		b = binary.AppendUvarint(b, uint64(len(m.httpAddr)))
		b = append(b, m.httpAddr...)
	}
	return b
}

// decodeMeta decodes an internal entry's body (after the type byte).
func decodeMeta(b []byte) (metaCmd, error) {
	if len(b) < 1 {
		return metaCmd{}, errBadCommand
	}
	m := metaCmd{op: internalOp(b[0])}
	if m.op != opSetMeta && m.op != opDeleteMeta {
		return metaCmd{}, fmt.Errorf("%w: unknown internal op %d", errBadCommand, b[0])
	}
	id, rest, err := readField(b[1:])
	if err != nil || id == "" {
		return metaCmd{}, errBadCommand
	}
	m.id = id
	if m.op == opSetMeta {
		if m.httpAddr, rest, err = readField(rest); err != nil {
			return metaCmd{}, err
		}
	}
	if len(rest) != 0 {
		return metaCmd{}, fmt.Errorf("%w: trailing bytes", errBadCommand)
	}
	return m, nil
}

func readField(b []byte) (string, []byte, error) {
	n, k := binary.Uvarint(b)
	if k <= 0 || n > maxMetaField || uint64(len(b)-k) < n {
		return "", nil, errBadCommand
	}
	return string(b[k : k+int(n)]), b[k+int(n):], nil
}

// validateEntry checks a framed entry before it is proposed, so Apply never
// sees malformed raftnode entries (Apply panics on them).
func validateEntry(b []byte) error {
	if len(b) == 0 {
		return fmt.Errorf("%w: empty entry", ErrBadRequest)
	}
	switch entryType(b[0]) {
	case entryApp:
		if len(b)-1 > MaxCommandSize {
			return fmt.Errorf("%w: command of %d bytes exceeds %d", ErrBadRequest, len(b)-1, MaxCommandSize)
		}
		return nil
	case entryInternal:
		if _, err := decodeMeta(b[1:]); err != nil {
			return fmt.Errorf("%w: %w", ErrBadRequest, err)
		}
		return nil
	default:
		return fmt.Errorf("%w: unknown entry type %d", ErrBadRequest, b[0])
	}
}
