package raftnode

import (
	"net"
	"testing"
	"time"
)

// TestTCPLayerDialsFromListenIP: with a specific listen IP, outbound raft
// connections leave from it, which is what lets a firewall or the chaos
// suite's proxy tell peers apart by source address.
func TestTCPLayerDialsFromListenIP(t *testing.T) {
	peer, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer peer.Close()
	for _, tt := range []struct {
		listen, wantSrc string
	}{
		{"127.0.0.2:0", "127.0.0.2"},
		{"127.0.0.3:0", "127.0.0.3"},
	} {
		l, err := NewTCPLayer(tt.listen, nil)
		if err != nil {
			t.Fatal(err)
		}
		c, err := l.Dial(peer.Addr().String(), 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		in, err := peer.Accept()
		if err != nil {
			t.Fatal(err)
		}
		if got := in.RemoteAddr().(*net.TCPAddr).IP.String(); got != tt.wantSrc {
			t.Errorf("listen %s: peer saw source %s, want %s", tt.listen, got, tt.wantSrc)
		}
		in.Close()
		c.Close()
		l.Close()
	}
}

func TestAdvertisedLayerAddr(t *testing.T) {
	l, err := NewTCPLayer("127.0.0.1:0", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	a := advertisedLayer{Layer: l, addr: "10.1.2.3:8300"}
	if got := a.Addr().String(); got != "10.1.2.3:8300" {
		t.Fatalf("Addr = %s", got)
	}
	if got := newStreamLayer(a).Addr().String(); got != "10.1.2.3:8300" {
		t.Fatalf("stream layer Addr = %s", got)
	}
}
