package tracker

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/cartona/deploy/manifest"
)

// TestFlights: callers of one key that arrive while a run is going share
// the next run, and each returns only after a run that started after its
// call has ended. In a synctest bubble, every caller is known to wait
// before the first run ends, whatever the machine's load.
func TestFlights(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const callers = 50
		f := newFlights()
		var started, ended atomic.Int64
		gate := make(chan struct{})
		fn := func() {
			if started.Add(1) == 1 {
				<-gate // the first run holds until every other caller waits
			}
			ended.Store(started.Load())
		}
		var wg sync.WaitGroup
		call := func() {
			before := started.Load()
			f.do(context.Background(), "k", fn)
			if ended.Load() <= before {
				t.Errorf("a caller returned before a run that started after its call (runs started before: %d, ended: %d)", before, ended.Load())
			}
		}
		wg.Go(call)
		synctest.Wait() // the first run holds
		for range callers - 1 {
			wg.Go(call)
		}
		synctest.Wait() // every other caller waits
		close(gate)
		wg.Wait()
		if n := started.Load(); n != 2 {
			t.Errorf("%d runs for %d concurrent callers, want 2: the one running and one for all who came meanwhile", n, callers)
		}
	})
}

// BenchmarkOffer measures what choosing a device's build costs during a
// staged rollout (cohort hash, halt and failure checks) against the same
// choice under a pointer without a candidate, in the same run.
func BenchmarkOffer(b *testing.B) {
	f := newFixture(b)
	stable := f.publish("retailer", "production", "1.0.0")
	cand := f.publish("retailer", "rollout", "1.1.0")
	f.pointer(manifest.Latest{App: "retailer", Channel: "rollout", Build: stable,
		Candidate: &manifest.Candidate{Build: cand, Percent: 50, Rollout: "r1"}})
	f.point("retailer", "production", stable)
	srv, err := New(f.config(b))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { srv.Close() })
	devices := make([]string, 1024)
	for i := range devices {
		devices[i] = fmt.Sprintf("device-%04d", i)
	}
	measure := func(channel string) float64 {
		rel, err := srv.man.release(context.Background(), "retailer", channel)
		if err != nil {
			b.Fatal(err)
		}
		start := time.Now()
		for i := range b.N {
			if o := srv.offerFor(context.Background(), rel, "2.0.0", devices[i%len(devices)]); o.build == nil {
				b.Fatal("nothing offered")
			}
		}
		return float64(time.Since(start).Nanoseconds()) / float64(b.N)
	}
	plain := measure("production")
	rollout := measure("rollout")
	b.ReportMetric(plain, "plain_ns")
	b.ReportMetric(rollout, "rollout_ns")
	b.ReportMetric(rollout/plain, "ratio")
}
