package tracker

import (
	"context"
	"testing"
	"time"

	"github.com/cartona/deploy/internal/pgtest"
	"github.com/cartona/deploy/state"
)

// TestHaltDecidedByTwoTrackers: two trackers share a PostgreSQL state and
// serve the same rollout; failures stored by a third party reach both
// through their sweeps, and both decide to halt it. The halt counts once
// in rollout_halts_total over the two, and both report the time the
// database recorded, though their clocks are an hour apart, at once (their
// cache, which reads the recorded halts again, holds for an hour here).
func TestHaltDecidedByTwoTrackers(t *testing.T) {
	defer func(d time.Duration) { sweepEvery = d }(sweepEvery)
	sweepEvery = 20 * time.Millisecond
	url := pgtest.Database(t)
	fl := newFleet(t, 100, func(c *Config) {
		c.Halt.Key, c.Halt.MinDevices = nil, 1
		c.State, c.CacheTTL = openPostgres(t, url), time.Hour
	})
	cfg := fl.f.config(t)
	cfg.StatsToken, cfg.Halt = "tok", HaltPolicy{MinDevices: 1}
	cfg.State, cfg.CacheTTL = openPostgres(t, url), time.Hour
	cfg.Now = func() time.Time { return time.Now().Add(time.Hour) }
	other, otherBase := startServer(t, cfg)
	trackers := []struct {
		srv  *Server
		base string
	}{{fl.srv, fl.base}, {other, otherBase}}
	ctx := context.Background()
	for _, tr := range trackers { // both serve the candidate, so both watch it
		fl.base = tr.base
		if v := fl.capgoVersion(t, fl.devices[0]); v != fl.cand.Version {
			t.Fatalf("offered %q, want the candidate", v)
		}
	}
	if err := fl.srv.state.Record(ctx, state.Event{App: fl.app, Device: fl.devices[0], Action: state.ActionUpdateFail,
		Version: fl.cand.Version, TS: 1700000000000, Source: "capgo"}); err != nil {
		t.Fatal(err)
	}
	for _, tr := range trackers {
		for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(5 * time.Millisecond) {
			if _, ok := tr.srv.health.halt(fl.app, fl.channel, fl.r); ok {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("a tracker did not halt the rollout within 5 s")
			}
		}
	}
	var halts []state.Halt
	for deadline := time.Now().Add(5 * time.Second); len(halts) == 0; time.Sleep(5 * time.Millisecond) {
		var err error
		if halts, err = fl.srv.state.Halts(ctx, fl.app); err != nil || time.Now().After(deadline) {
			t.Fatalf("Halts = %+v, %v; want one", halts, err)
		}
	}
	for _, tr := range trackers { // the decision each tracker holds is the recorded one
		for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(5 * time.Millisecond) {
			if h, _ := tr.srv.health.halt(fl.app, fl.channel, fl.r); h == halts[0] {
				break
			}
			if time.Now().After(deadline) {
				h, _ := tr.srv.health.halt(fl.app, fl.channel, fl.r)
				t.Fatalf("tracker %s holds the halt %+v, want the recorded %+v", tr.base, h, halts[0])
			}
		}
	}
	var total float64
	for _, tr := range trackers {
		total += scrape(t, nil, tr.base+"/metrics")[`deploy_tracker_rollout_halts_total{app="retailer",channel="production"}`]
		fl.base = tr.base
		ro := fl.rollout(t)
		if ro.HaltedAt == nil || !ro.HaltedAt.Equal(halts[0].At.Truncate(time.Second)) {
			t.Errorf("tracker %s reports halted_at %v, want the recorded %v", tr.base, ro.HaltedAt, halts[0].At)
		}
	}
	if total != 1 {
		t.Errorf("rollout_halts_total sums to %v over the two trackers, want 1 for one halt", total)
	}
}
