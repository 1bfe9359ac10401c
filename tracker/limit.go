package tracker

import (
	"hash/maphash"
	"math"
	"sync"
	"time"
)

// limiter is a set of token buckets by key (a device ID or an address),
// in memory and bounded: each of its shards holds at most max/shards keys.
// A bucket forgotten to make room comes back full, which errs on the side
// of letting a device through. Buckets are kept by the key's 64-bit seeded
// hash: the maps hold no pointers for the garbage collector to scan and
// keep no request's memory alive, and two keys share a bucket with a
// chance of about 1 in 10^9 at 100,000 keys.
type limiter struct {
	rate   float64 // tokens per second; <= 0 never limits
	burst  float64
	seed   maphash.Seed
	shards [16]limitShard
	max    int // per shard
}

type limitShard struct {
	mu      sync.Mutex
	buckets map[uint64]bucket
}

// bucket is 16 bytes, without pointers: the garbage collector need not
// scan a limiter's maps, however many devices they hold.
type bucket struct {
	tokens float64
	last   int64 // Unix nanoseconds of the last refill
}

func newLimiter(rate float64, burst int, maxKeys int) *limiter {
	l := &limiter{rate: rate, burst: float64(max(burst, 1)), seed: maphash.MakeSeed(), max: max(maxKeys/16, 16)}
	for i := range l.shards {
		l.shards[i].buckets = map[uint64]bucket{}
	}
	return l
}

// allow takes a token for key. If none is left it returns false and how
// long until one is.
func (l *limiter) allow(key string, now time.Time) (bool, time.Duration) {
	return l.take(key, now, 1, 1)
}

// allowN takes n more tokens for key after the one its request took, or
// none if fewer are left: it then returns false and how long until n are.
// n over what the bucket can hold then is taken from a bucket as full as
// it gets, which goes into debt: what comes later waits for it.
func (l *limiter) allowN(key string, now time.Time, n float64) (bool, time.Duration) {
	if l == nil {
		return true, 0
	}
	return l.take(key, now, n, math.Min(n, math.Max(l.burst-1, 0)))
}

// take takes n tokens for key if it has need, which is n or less.
func (l *limiter) take(key string, now time.Time, n, need float64) (bool, time.Duration) {
	if l == nil || l.rate <= 0 || n <= 0 {
		return true, 0
	}
	h := maphash.String(l.seed, key)
	sh := &l.shards[h%uint64(len(l.shards))]
	t := now.UnixNano()
	sh.mu.Lock()
	defer sh.mu.Unlock()
	b, ok := sh.buckets[h]
	if !ok {
		if len(sh.buckets) >= l.max {
			l.evict(sh, t)
		}
		b = bucket{tokens: l.burst, last: t}
	} else if t > b.last {
		b.tokens = math.Min(l.burst, b.tokens+float64(t-b.last)/1e9*l.rate)
		b.last = t
	}
	if b.tokens < need {
		sh.buckets[h] = b
		wait := time.Duration((need - b.tokens) / l.rate * float64(time.Second))
		return false, wait
	}
	b.tokens -= n
	sh.buckets[h] = b
	return true, 0
}

// evict drops the buckets that have refilled (forgetting them changes
// nothing), then arbitrary ones until a quarter of the shard is free.
func (l *limiter) evict(sh *limitShard, now int64) {
	full := int64(l.burst / l.rate * float64(time.Second))
	for k, b := range sh.buckets {
		if now-b.last >= full {
			delete(sh.buckets, k)
		}
	}
	for k := range sh.buckets {
		if len(sh.buckets) < l.max-l.max/4 {
			break
		}
		delete(sh.buckets, k)
	}
}
