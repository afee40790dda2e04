package cmdenc

import (
	"bytes"
	"errors"
	"testing"
	"time"
)

func TestRoundTrip(t *testing.T) {
	at := time.Date(2026, 11, 21, 10, 0, 0, 123, time.UTC)
	w := NewWriter(7, 1, 0)
	w.Uint(42)
	w.String("site-a")
	w.Bytes([]byte{1, 2, 3})
	w.Time(at)
	w.Time(time.Time{})
	typ, ver, r, err := NewReader(w.Done())
	if err != nil || typ != 7 || ver != 1 {
		t.Fatalf("NewReader = %d %d %v", typ, ver, err)
	}
	if got := r.Uint(); got != 42 {
		t.Fatalf("Uint = %d", got)
	}
	if got := r.String(); got != "site-a" {
		t.Fatalf("String = %q", got)
	}
	if got := r.Bytes(); !bytes.Equal(got, []byte{1, 2, 3}) {
		t.Fatalf("Bytes = %v", got)
	}
	if got := r.Time(); !got.Equal(at) {
		t.Fatalf("Time = %v", got)
	}
	if got := r.Time(); !got.IsZero() {
		t.Fatalf("zero Time = %v", got)
	}
	if r.Err() != nil {
		t.Fatal(r.Err())
	}
}

func TestTruncated(t *testing.T) {
	w := NewWriter(1, 1, 0)
	w.Bytes(bytes.Repeat([]byte("x"), 100))
	cmd := w.Done()
	for _, n := range []int{0, 1, 2, 3, 50} {
		_, _, r, err := NewReader(cmd[:n])
		if err != nil {
			continue
		}
		r.Bytes()
		if !errors.Is(r.Err(), ErrShort) {
			t.Fatalf("len %d: err = %v, want ErrShort", n, r.Err())
		}
	}
}

func TestCountCap(t *testing.T) {
	w := NewWriter(1, 1, 0)
	w.Uint(1 << 40)
	_, _, r, _ := NewReader(w.Done())
	if n := r.Count(1000); n != 0 || r.Err() == nil {
		t.Fatalf("Count = %d, err %v; want refusal", n, r.Err())
	}
}

func FuzzReader(f *testing.F) {
	w := NewWriter(1, 1, 0)
	w.Uint(3)
	w.String("abc")
	w.Time(time.Unix(5, 0))
	f.Add(w.Done())
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _, r, err := NewReader(b)
		if err != nil {
			return
		}
		for i := 0; i < 8 && r.Err() == nil; i++ {
			r.Count(1 << 20)
			r.Bytes()
			r.Time()
		}
	})
}
