package dashboard

import (
	"net/netip"
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
// of tries that refills over time. A try is taken before a token is
// compared and given back when it was right, so requests at the same time
// from one address cannot all slip through before their failures count.
// IPv6 addresses count by their /64, which one client usually holds whole.
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

// take takes one of addr's tries, or, when it has none, returns how long
// until it has.
func (g *guard) take(addr string) (ok bool, wait time.Duration) {
	g.mu.Lock()
	defer g.mu.Unlock()
	key := guessKey(addr)
	b := g.refill(key)
	if b == nil {
		if len(g.tries) >= maxGuessers {
			g.forget()
		}
		b = &bucket{left: guessBurst, at: g.now()}
		g.tries[key] = b
	}
	if b.left < 1 {
		return false, time.Duration((1 - b.left) * float64(guessEvery))
	}
	b.left--
	return true, 0
}

// giveBack returns the try taken for a right token.
func (g *guard) giveBack(addr string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if b := g.refill(guessKey(addr)); b != nil {
		b.left = min(b.left+1, guessBurst)
	}
}

// refill brings key's bucket up to now and returns it, nil if key has
// none.
func (g *guard) refill(key string) *bucket {
	b := g.tries[key]
	if b == nil {
		return nil
	}
	now := g.now()
	b.left = min(b.left+float64(now.Sub(b.at))/float64(guessEvery), guessBurst)
	b.at = now
	return b
}

// forget drops the addresses whose tries have all come back, then, if
// that is not enough, arbitrary ones until a quarter of the room is free:
// a flood of addresses must not grow memory, and each forgotten one gets
// at most guessBurst tries more.
func (g *guard) forget() {
	now := g.now()
	for key, b := range g.tries {
		if b.left+float64(now.Sub(b.at))/float64(guessEvery) >= guessBurst {
			delete(g.tries, key)
		}
	}
	for key := range g.tries {
		if len(g.tries) < maxGuessers*3/4 {
			break
		}
		delete(g.tries, key)
	}
}

// guessKey is what addr's tries are counted by: an IPv4 address, or an
// IPv6 address's /64.
func guessKey(addr string) string {
	ip, err := netip.ParseAddr(addr)
	if err != nil || ip.Unmap().Is4() {
		return addr
	}
	p, _ := ip.Prefix(64)
	return p.String()
}
