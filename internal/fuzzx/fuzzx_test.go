package fuzzx

import (
	"errors"
	"strings"
	"testing"

	"github.com/dgraph-io/badger/v4"
)

// counter is a toy state machine: "set k v" writes, anything else refuses.
var counter = Machine{
	Apply: func(txn *badger.Txn, _ uint64, cmd []byte) []byte {
		f := strings.Fields(string(cmd))
		if len(f) != 3 || f[0] != "set" {
			return []byte{0xFF}
		}
		if err := txn.Set([]byte(f[1]), []byte(f[2])); err != nil {
			panic(err)
		}
		return nil
	},
	Result: func(out []byte) error {
		if len(out) > 0 && out[0] == 0xFF {
			return errors.New("refused")
		}
		return nil
	},
}

func TestMachine(t *testing.T) {
	db, base := counter.State(t, [][]byte{[]byte("set a 1"), []byte("set b 2")})
	if base != "\"a\"=\"1\"\n\"b\"=\"2\"\n" {
		t.Fatalf("base %q", base)
	}
	tests := []struct{ name, cmd string }{
		{"write", "set c 3"},
		{"overwrite", "set a 9"},
		{"refused", "bogus"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { counter.Check(t, db, base, 3, []byte(tt.cmd)) })
	}
	if got := Dump(db.NewTransaction(false)); got != base {
		t.Fatalf("Check committed: %q", got)
	}
}
