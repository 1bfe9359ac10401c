package dashboard

import (
	"sync"
	"time"
)

// Wrong tokens an address may present before it must wait, and how often
// it earns one more try: 10 at once, then one every 6 seconds, so that
// guessing a token from one address takes years even for a short token,
// while someone who mistypes it a few times is not slowed down.
const (
	guessBurst = 10
	guessEvery = 6 * time.Second
	// maxGuessers bounds the addresses remembered; past it, those whose
	// tries have all come back are forgotten first.
	maxGuessers = 10000
)

// guard counts the wrong tokens each client address presents, as a bucket
// of tries that refills over time. A right token costs nothing.
type guard struct {
	now func() time.Time

	mu    sync.Mutex
	tries map[string]*bucket
}

type bucket struct {
	left float64 // tries left
	at   time.Time
}

func newGuard(now func() time.Time) *guard {
	return &guard{now: now, tries: map[string]*bucket{}}
}

// wait is how long addr must wait before its next try: 0 when it has one.
func (g *guard) wait(addr string) time.Duration {
	g.mu.Lock()
	defer g.mu.Unlock()
	b := g.refill(addr)
	if b == nil || b.left >= 1 {
		return 0
	}
	return time.Duration((1 - b.left) * float64(guessEvery))
}

// failed spends one of addr's tries.
func (g *guard) failed(addr string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	b := g.refill(addr)
	if b == nil {
		if len(g.tries) >= maxGuessers {
			g.forget()
		}
		b = &bucket{left: guessBurst, at: g.now()}
		g.tries[addr] = b
	}
	b.left = max(b.left-1, 0)
}

// refill brings addr's bucket up to now and returns it, nil if addr has
// no spent tries.
func (g *guard) refill(addr string) *bucket {
	b := g.tries[addr]
	if b == nil {
		return nil
	}
	now := g.now()
	b.left = min(b.left+float64(now.Sub(b.at))/float64(guessEvery), guessBurst)
	b.at = now
	return b
}

// forget drops the addresses whose tries have all come back, or, if none
// has, every address: a flood of addresses must not grow memory.
func (g *guard) forget() {
	now := g.now()
	for addr, b := range g.tries {
		if b.left+float64(now.Sub(b.at))/float64(guessEvery) >= guessBurst {
			delete(g.tries, addr)
		}
	}
	if len(g.tries) >= maxGuessers {
		clear(g.tries)
	}
}
