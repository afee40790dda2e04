package relay

import (
	"testing"

	"github.com/dgraph-io/badger/v4"
)

func TestApplyDiskState(t *testing.T) {
	db, err := badger.Open(badger.DefaultOptions("").WithInMemory(true).WithLogger(nil))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	f := &fsm{}
	tests := []struct {
		name    string
		cmd     []byte
		wantErr bool
		alarm   string
	}{
		{"critical", encodeDiskState("r2", 2), false, "r2"},
		{"another node ok keeps the alarm", encodeDiskState("r1", 0), false, "r2"},
		{"the node recovers", encodeDiskState("r2", 1), false, ""},
		{"state out of range", encodeDiskState("r2", 3), true, ""},
		{"no node", encodeDiskState("", 2), true, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			txn := db.NewTransaction(true)
			defer txn.Discard()
			out := f.Apply(txn, 1, tt.cmd)
			if gotErr := len(out) > 0 && out[0] == 0xFF; gotErr != tt.wantErr {
				t.Fatalf("Apply = %q, want error %v", out, tt.wantErr)
			}
			if !tt.wantErr {
				if err := txn.Commit(); err != nil {
					t.Fatal(err)
				}
			}
			if got, _ := f.alarm.critical.Load().(string); got != tt.alarm {
				t.Fatalf("alarm = %q, want %q", got, tt.alarm)
			}
		})
	}
	// Committed states are what the monitor reads after a restart.
	err = db.View(func(txn *badger.Txn) error {
		item, err := txn.Get(deviceKey(prefixDiskState, "r2"))
		if err != nil {
			return err
		}
		return item.Value(func(v []byte) error {
			if len(v) != 1 || v[0] != 1 {
				t.Errorf("r2 stored state %v, want [1]", v)
			}
			return nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}
}
