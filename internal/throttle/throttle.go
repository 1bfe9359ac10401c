// Package throttle keeps a failure that repeats on every request from
// burying a log: the first is logged, then at most one summary per
// interval of how many failed since, then one line when it stops.
package throttle

import (
	"sync"
	"time"
)

// Failures tracks one kind of failure. The zero value logs a summary at
// most every 10 seconds; it is safe for concurrent use.
type Failures struct {
	Every time.Duration // the most often a summary is due; 0 means 10 s

	mu            sync.Mutex
	since, logged time.Time // zero while there is no failure
	count, items  int       // failures, and what they held, since the last line
}

// Line is what to log, when Fail or OK says a line is due.
type Line struct {
	First     bool          // the first failure of a run
	Recovered bool          // the run of failures ended
	Count     int           // failures since the last line (the first not included)
	Items     int           // what those failures held (events, requests)
	For       time.Duration // how long the run has lasted
}

// Fail records a failure at now that held items, and says whether a line
// is due.
func (f *Failures) Fail(now time.Time, items int) (Line, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.since.IsZero() {
		f.since, f.logged = now, now
		return Line{First: true, Items: items}, true
	}
	f.count++
	f.items += items
	every := f.Every
	if every <= 0 {
		every = 10 * time.Second
	}
	if now.Sub(f.logged) < every {
		return Line{}, false
	}
	l := Line{Count: f.count, Items: f.items, For: now.Sub(f.since)}
	f.logged, f.count, f.items = now, 0, 0
	return l, true
}

// OK records a success at now, and says whether a line is due: the first
// success after failures.
func (f *Failures) OK(now time.Time) (Line, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.since.IsZero() {
		return Line{}, false
	}
	l := Line{Recovered: true, Count: f.count, Items: f.items, For: now.Sub(f.since)}
	f.since, f.logged, f.count, f.items = time.Time{}, time.Time{}, 0, 0
	return l, true
}
