package faultnet

import (
	"container/heap"
	"net"
	"net/netip"
	"sync"
	"time"
)

// Limits of the delay queue. A proxy with a long Delay in front of a fast
// sender would otherwise buffer without bound; a real link with a full
// buffer drops too. 16 MiB is many seconds of QUIC traffic at the rates a
// relay uplink sees.
const (
	maxQueuedDatagrams = 8192
	maxQueuedBytes     = 16 << 20
)

// datagram is one datagram waiting for its send time.
type datagram struct {
	at   time.Time
	seq  uint64 // breaks ties in at, so equal delays keep arrival order
	b    []byte // shared by the copies of a duplicated datagram; never written
	conn *net.UDPConn
	to   netip.AddrPort // destination on an unconnected conn; zero on a connected one
}

// datagramHeap orders datagrams by send time, then by arrival.
type datagramHeap []datagram

func (h datagramHeap) Len() int { return len(h) }
func (h datagramHeap) Less(i, j int) bool {
	if !h[i].at.Equal(h[j].at) {
		return h[i].at.Before(h[j].at)
	}
	return h[i].seq < h[j].seq
}
func (h datagramHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *datagramHeap) Push(x any)   { *h = append(*h, x.(datagram)) }
func (h *datagramHeap) Pop() any {
	old := *h
	n := len(old)
	d := old[n-1]
	old[n-1] = datagram{} // let the payload be collected
	*h = old[:n-1]
	return d
}

// delayQueue holds delayed datagrams for the scheduler goroutine. It is a
// heap rather than a sleep per datagram so that one slow datagram never
// holds up the ones behind it, and one goroutine serves any number of them.
type delayQueue struct {
	// wake gets a value when a push puts a new datagram at the head, so the
	// scheduler re-arms its timer for the earlier deadline. Capacity 1: one
	// pending wake-up is enough.
	wake chan struct{}

	mu       sync.Mutex // guards the fields below
	h        datagramHeap
	bytes    int
	seq      uint64
	closed   bool
	maxLen   int
	maxBytes int
}

func newDelayQueue(maxLen, maxBytes int) *delayQueue {
	return &delayQueue{wake: make(chan struct{}, 1), maxLen: maxLen, maxBytes: maxBytes}
}

// push queues d, or reports false when the queue is full or closed.
func (q *delayQueue) push(d datagram) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed || len(q.h) >= q.maxLen || q.bytes+len(d.b) > q.maxBytes {
		return false
	}
	d.seq = q.seq
	q.seq++
	heap.Push(&q.h, d)
	q.bytes += len(d.b)
	if q.h[0].seq == d.seq {
		select {
		case q.wake <- struct{}{}:
		default:
		}
	}
	return true
}

// popDue removes and returns the earliest datagram if it is due at now.
func (q *delayQueue) popDue(now time.Time) (datagram, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.h) == 0 || q.h[0].at.After(now) {
		return datagram{}, false
	}
	d := heap.Pop(&q.h).(datagram)
	q.bytes -= len(d.b)
	return d, true
}

// next returns the send time of the earliest datagram.
func (q *delayQueue) next() (time.Time, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.h) == 0 {
		return time.Time{}, false
	}
	return q.h[0].at, true
}

// close discards everything queued, refuses later pushes and returns how
// many datagrams it discarded.
func (q *delayQueue) close() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	n := len(q.h)
	q.h, q.bytes, q.closed = nil, 0, true
	return n
}

// len returns how many datagrams are queued.
func (q *delayQueue) len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.h)
}
