package account

import (
	"sync"
	"time"
)

// LimiterConfig tunes a Limiter.
type LimiterConfig struct {
	// MaxFailures is how many failed attempts a key may make in Window
	// before it is locked out.
	MaxFailures int
	Window      time.Duration
	// Lockout is how long a key stays locked once it passed MaxFailures.
	Lockout time.Duration
	// MaxKeys bounds memory: past it the oldest idle keys are dropped.
	MaxKeys int
	// Now is the clock (time.Now when nil); tests pass their own.
	Now func() time.Time
}

// DefaultAccountLimits locks an account after 5 failures in 15 minutes,
// for 15 minutes.
func DefaultAccountLimits() LimiterConfig {
	return LimiterConfig{MaxFailures: 5, Window: 15 * time.Minute, Lockout: 15 * time.Minute, MaxKeys: 10000}
}

// DefaultAddressLimits locks an address after 20 failures in 15 minutes,
// for 15 minutes (an office behind one NAT address has several people).
func DefaultAddressLimits() LimiterConfig {
	return LimiterConfig{MaxFailures: 20, Window: 15 * time.Minute, Lockout: 15 * time.Minute, MaxKeys: 10000}
}

// Limiter counts failed sign-in attempts per key (an account name, an
// address) and locks a key out after too many. It lives in one node's
// memory: each central node counts the attempts it sees.
type Limiter struct {
	cfg LimiterConfig

	mu   sync.Mutex // guards keys
	keys map[string]*attempts
}

type attempts struct {
	first, last time.Time // of the current window
	failures    int
	lockedUntil time.Time
}

// NewLimiter returns a limiter; zero fields of cfg take the account
// defaults.
func NewLimiter(cfg LimiterConfig) *Limiter {
	d := DefaultAccountLimits()
	if cfg.MaxFailures <= 0 {
		cfg.MaxFailures = d.MaxFailures
	}
	if cfg.Window <= 0 {
		cfg.Window = d.Window
	}
	if cfg.Lockout <= 0 {
		cfg.Lockout = d.Lockout
	}
	if cfg.MaxKeys <= 0 {
		cfg.MaxKeys = d.MaxKeys
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Limiter{cfg: cfg, keys: map[string]*attempts{}}
}

// Allow reports whether key may attempt a sign-in now and, when not, how
// long until it may.
func (l *Limiter) Allow(key string) (bool, time.Duration) {
	now := l.cfg.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	a := l.keys[key]
	if a == nil || !now.Before(a.lockedUntil) {
		return true, 0
	}
	return false, a.lockedUntil.Sub(now)
}

// Fail records a failed attempt and reports whether key is now locked out.
func (l *Limiter) Fail(key string) bool {
	now := l.cfg.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	a := l.keys[key]
	if a == nil {
		l.evict(now)
		a = &attempts{first: now}
		l.keys[key] = a
	}
	if now.Sub(a.first) > l.cfg.Window {
		a.first, a.failures = now, 0
	}
	a.failures++
	a.last = now
	if a.failures >= l.cfg.MaxFailures {
		a.lockedUntil = now.Add(l.cfg.Lockout)
		a.first, a.failures = now, 0
		return true
	}
	return false
}

// Succeed forgets key's failures (a correct password ends the count, not
// a lock-out in force: Allow is checked first).
func (l *Limiter) Succeed(key string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if a := l.keys[key]; a != nil && !l.cfg.Now().Before(a.lockedUntil) {
		delete(l.keys, key)
	}
}

// evict drops idle keys when the map is full; then, if still full, the
// least recently failed one. The caller holds mu.
func (l *Limiter) evict(now time.Time) {
	if len(l.keys) < l.cfg.MaxKeys {
		return
	}
	var oldest string
	var oldestAt time.Time
	for k, a := range l.keys {
		if now.Sub(a.last) > l.cfg.Window && !now.Before(a.lockedUntil) {
			delete(l.keys, k)
			continue
		}
		if oldest == "" || a.last.Before(oldestAt) {
			oldest, oldestAt = k, a.last
		}
	}
	if len(l.keys) >= l.cfg.MaxKeys && oldest != "" {
		delete(l.keys, oldest)
	}
}
