package tracker

import (
	"context"
	"sync"
	"time"
)

// ttlCache remembers the result (value or error) of a fill function per key
// for ttl, and makes concurrent misses of one key share a single fill, so a
// burst of requests makes one store read. It holds at most max keys, and
// reports each lookup to lookups (if not nil): a hit, or a miss.
type ttlCache[V any] struct {
	ttl     time.Duration
	max     int
	now     func() time.Time
	lookups func(hit bool)

	mu    sync.Mutex
	items map[string]cached[V]
	calls map[string]*flight[V]
}

type cached[V any] struct {
	val     V
	err     error
	expires time.Time
}

type flight[V any] struct {
	done chan struct{}
	val  V
	err  error
}

func newTTLCache[V any](ttl time.Duration, max int, now func() time.Time, lookups func(hit bool)) *ttlCache[V] {
	return &ttlCache[V]{ttl: ttl, max: max, now: now, lookups: lookups, items: map[string]cached[V]{}, calls: map[string]*flight[V]{}}
}

// get returns the cached result for key, or runs fill once for all callers
// that miss at the same time. fill runs detached from ctx, so one caller
// giving up does not fail the others; a caller whose ctx ends stops waiting.
func (c *ttlCache[V]) get(ctx context.Context, key string, fill func() (V, error)) (V, error) {
	c.mu.Lock()
	it, hit := c.items[key]
	hit = hit && c.now().Before(it.expires)
	if c.lookups != nil {
		c.lookups(hit)
	}
	if hit {
		c.mu.Unlock()
		return it.val, it.err
	}
	f, ok := c.calls[key]
	if !ok {
		f = &flight[V]{done: make(chan struct{})}
		c.calls[key] = f
		go c.run(key, f, fill)
	}
	c.mu.Unlock()
	select {
	case <-f.done:
		return f.val, f.err
	case <-ctx.Done():
		var zero V
		return zero, ctx.Err()
	}
}

func (c *ttlCache[V]) run(key string, f *flight[V], fill func() (V, error)) {
	f.val, f.err = fill()
	c.mu.Lock()
	if len(c.items) >= c.max {
		c.evict()
	}
	c.items[key] = cached[V]{val: f.val, err: f.err, expires: c.now().Add(c.ttl)}
	delete(c.calls, key)
	c.mu.Unlock()
	close(f.done)
}

// evict drops expired items, and if that is not enough, arbitrary ones
// (map order is random) until a quarter of the room is free.
func (c *ttlCache[V]) evict() {
	now := c.now()
	for k, it := range c.items {
		if !now.Before(it.expires) {
			delete(c.items, k)
		}
	}
	for k := range c.items {
		if len(c.items) < c.max-c.max/4 {
			break
		}
		delete(c.items, k)
	}
}

// forget drops the cached result of key, so the next get fills it again.
func (c *ttlCache[V]) forget(key string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.items, key)
}
