package state

import "sync"

// MaxFailed bounds a FailedSet: past it, a miss is not an answer and a
// backend reads its database.
const MaxFailed = 1 << 20

// FailedSet keeps failed marks (device, app and build) in memory, so that
// an update check costs no database read. Failures are never removed.
type FailedSet struct {
	mu   sync.RWMutex
	set  map[failure]struct{}
	full bool // a failure was left out: misses are not answers
}

type failure struct{ app, device, version string }

// NewFailedSet returns an empty set.
func NewFailedSet() *FailedSet { return &FailedSet{set: map[failure]struct{}{}} }

// Add adds a failure, unless the set holds MaxFailed already.
func (f *FailedSet) Add(app, device, version string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.set) >= MaxFailed {
		f.full = true
		return
	}
	f.set[failure{app, device, version}] = struct{}{}
}

// AddMarks adds the failed marks among marks.
func (f *FailedSet) AddMarks(marks ...[]Mark) {
	for _, ms := range marks {
		for _, m := range ms {
			if m.Kind == MarkFailed {
				f.Add(m.App, m.Device, m.Version)
			}
		}
	}
}

// Has reports whether the failure is in the set, and whether the set holds
// every failure it was given (so that a miss is an answer).
func (f *FailedSet) Has(app, device, version string) (failed, complete bool) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	_, failed = f.set[failure{app, device, version}]
	return failed, !f.full
}
