package tracker

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
)

// TestFlights: callers of one key that arrive while a run is going share
// the next run, and each returns only after a run that started after its
// call has ended.
func TestFlights(t *testing.T) {
	const callers = 50
	f := newFlights()
	var calls, started, ended atomic.Int64
	gate := make(chan struct{})
	var once sync.Once
	fn := func() {
		started.Add(1)
		if calls.Load() < callers {
			<-gate // the first run holds until every caller has called
		}
		ended.Store(started.Load())
	}
	var wg sync.WaitGroup
	for range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			before := started.Load()
			if calls.Add(1) == callers {
				once.Do(func() { close(gate) })
			}
			f.do(context.Background(), "k", fn)
			if ended.Load() <= before {
				t.Errorf("a caller returned before a run that started after its call (runs started before: %d, ended: %d)", before, ended.Load())
			}
		}()
	}
	wg.Wait()
	if n := started.Load(); n > 3 {
		t.Errorf("%d runs for %d concurrent callers, want them to share", n, callers)
	}
}
