// Package statetest is the conformance suite that every state.State
// backend passes. A backend's test calls [Run].
package statetest

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/cartona/deploy/state"
)

// Backend describes the backend under test.
type Backend struct {
	// Fresh makes an empty database and returns a function that opens a
	// State on it; each call opens another State on the same data, as
	// another tracker (or the same one restarted) would. States are closed
	// by the suite.
	Fresh func(t *testing.T) func(state.Options) state.State
	// Shared is set when several States open at once on one database
	// see each other's writes (several trackers): at once, but failures
	// within SharedDelay.
	Shared bool
}

// SharedDelay bounds how long a failure recorded through one State may
// take to be seen through another on the same database; it is far more
// than it takes, so that a loaded machine does not fail the suite.
const SharedDelay = 5 * time.Second

// clock is a settable time; it also counts the events that States
// reported committed.
type clock struct {
	mu        sync.Mutex
	t         time.Time
	committed atomic.Int64
}

func (c *clock) now() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) set(t time.Time) { c.mu.Lock(); c.t = t; c.mu.Unlock() }

var start = time.Date(2026, 3, 1, 10, 30, 0, 0, time.UTC)

// opener opens States on one fresh database with a shared clock, closing
// them at the end of the test.
func opener(t *testing.T, b Backend) (func() state.State, *clock) {
	open, c := b.Fresh(t), &clock{t: start}
	return func() state.State {
		s := open(state.Options{Log: zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel), Now: c.now,
			OnCommit: func(n int, _ time.Duration, err error) {
				if err == nil {
					c.committed.Add(int64(n))
				}
			}})
		t.Cleanup(func() { s.Close() })
		return s
	}, c
}

func ev(app, device, action, version string, ts int64) state.Event {
	return state.Event{App: app, Device: device, Action: action, Version: version, TS: ts, Number: 1, Source: "capgo"}
}

func record(t *testing.T, s state.State, evs ...state.Event) {
	t.Helper()
	if err := s.Record(context.Background(), evs...); err != nil {
		t.Fatalf("Record: %v", err)
	}
}

// stats returns the counts of app by version.
func stats(t *testing.T, s state.State, app string) map[string]state.BuildCounts {
	t.Helper()
	bs, err := s.Stats(context.Background(), app)
	if err != nil {
		t.Fatalf("Stats: %v", err)
	}
	out := map[string]state.BuildCounts{}
	for _, b := range bs {
		if _, dup := out[b.App+"/"+b.Version]; dup {
			t.Fatalf("Stats lists %s %s twice", b.App, b.Version)
		}
		out[b.App+"/"+b.Version] = b
	}
	return out
}

func wantCounts(t *testing.T, got map[string]state.BuildCounts, key string, number int64, want state.Counts) {
	t.Helper()
	g := got[key]
	if g.Counts != want || g.Number != number {
		t.Fatalf("%s: got number %d %+v, want number %d %+v", key, g.Number, g.Counts, number, want)
	}
}

// Run runs the conformance suite.
func Run(t *testing.T, b Backend) {
	t.Run("Counts", func(t *testing.T) { testCounts(t, b) })
	t.Run("Dedup", func(t *testing.T) { testDedup(t, b) })
	t.Run("Concurrent", func(t *testing.T) { testConcurrent(t, b) })
	t.Run("Checks", func(t *testing.T) { testChecks(t, b) })
	t.Run("Failed", func(t *testing.T) { testFailed(t, b) })
	t.Run("Retries", func(t *testing.T) { testRetries(t, b) })
	t.Run("Floors", func(t *testing.T) { testFloors(t, b) })
	t.Run("Hourly", func(t *testing.T) { testHourly(t, b) })
	t.Run("Prune", func(t *testing.T) { testPrune(t, b) })
	t.Run("Halts", func(t *testing.T) { testHalts(t, b) })
	t.Run("Health", func(t *testing.T) { testHealth(t, b) })
	t.Run("Dilution", func(t *testing.T) { testDilution(t, b) })
	t.Run("Channels", func(t *testing.T) { testChannels(t, b) })
	t.Run("Closed", func(t *testing.T) { testClosed(t, b) })
	if b.Shared {
		t.Run("Shared", func(t *testing.T) { testShared(t, b) })
	}
}

func testCounts(t *testing.T, b Backend) {
	open, _ := opener(t, b)
	s := open()
	big := ev("shop", "d1", state.ActionCheck, "1.0.1", 60_000)
	big.Number = 7
	record(t, s,
		ev("shop", "d1", state.ActionCheck, "1.0.1", 0), big,
		ev("shop", "d1", state.ActionDownloadStart, "1.0.1", 1), ev("shop", "d1", state.ActionDownloadStart, "1.0.1", 2),
		ev("shop", "d1", state.ActionDownloadComplete, "1.0.1", 3), ev("shop", "d1", state.ActionDownloadComplete, "1.0.1", 4),
		ev("shop", "d2", state.ActionDownloadComplete, "1.0.1", 3),
		ev("shop", "d2", "checksum_fail", "1.0.1", 5), ev("shop", "d2", "download_manifest_brotli_fail", "1.0.1", 6),
		ev("shop", "d3", state.ActionUpdateFail, "1.0.1", 7), ev("shop", "d3", "set_fail", "1.0.1", 8),
		ev("shop", "d3", "app_moved_to_foreground", "1.0.1", 9),
		ev("shop", "d1", state.ActionCheck, "builtin", 0),
		ev("other", "d1", state.ActionCheck, "1.0.1", 0))
	got := stats(t, s, "shop")
	if len(got) != 2 {
		t.Fatalf("Stats(shop) = %v, want 2 builds", got)
	}
	wantCounts(t, got, "shop/1.0.1", 7, state.Counts{Checks: 2, DownloadsStarted: 2, DownloadsCompleted: 2, DownloadsFailed: 2, UpdatesFailed: 2, Devices: 3})
	wantCounts(t, got, "shop/builtin", 1, state.Counts{Checks: 1, Devices: 1})
	all := stats(t, s, "")
	if len(all) != 3 {
		t.Fatalf("Stats(\"\") = %v, want 3 builds", all)
	}
	wantCounts(t, all, "other/1.0.1", 1, state.Counts{Checks: 1, Devices: 1})
}

func testDedup(t *testing.T, b Backend) {
	open, c := opener(t, b)
	s := open()
	e := ev("shop", "d1", state.ActionDownloadStart, "1.0.1", 42)
	record(t, s, e, e)
	c.set(start.Add(3 * time.Hour)) // a resend hours later still counts once
	record(t, s, e, ev("shop", "d1", state.ActionDownloadStart, "1.0.1", 43))
	s.Close()
	s = open() // and so after a restart
	record(t, s, e)
	wantCounts(t, stats(t, s, "shop"), "shop/1.0.1", 1, state.Counts{DownloadsStarted: 2, Devices: 1})
}

func testConcurrent(t *testing.T, b Backend) {
	open, c := opener(t, b)
	s := open()
	const workers, each = 16, 50
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				e := ev("shop", fmt.Sprintf("d%d", w), state.ActionDownloadStart, "1.0.1", int64(i))
				if err := s.Record(context.Background(), e, e); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	wantCounts(t, stats(t, s, "shop"), "shop/1.0.1", 1, state.Counts{DownloadsStarted: workers * each, Devices: workers})
	if got := c.committed.Load(); got != 2*workers*each {
		t.Fatalf("OnCommit reported %d events committed, want %d", got, 2*workers*each)
	}
}

func testChecks(t *testing.T, b Backend) {
	open, _ := opener(t, b)
	s := open()
	for range 3 {
		s.RecordCheck(ev("shop", "d1", state.ActionCheck, "1.0.1", 60_000))
	}
	s.RecordCheck(ev("shop", "d1", state.ActionCheck, "1.0.1", 120_000))
	s.RecordCheck(ev("shop", "d2", state.ActionCheck, "1.0.1", 120_000))
	if err := s.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	wantCounts(t, stats(t, s, "shop"), "shop/1.0.1", 1, state.Counts{Checks: 3, Devices: 2})
	// Checks are counts, not raw events: retention has none to remove.
	if n, err := s.Prune(context.Background(), time.Now().Add(time.Hour)); err != nil || n != 0 {
		t.Fatalf("Prune after only checks removed %d raw events (%v); want none kept", n, err)
	}
	wantCounts(t, stats(t, s, "shop"), "shop/1.0.1", 1, state.Counts{Checks: 3, Devices: 2})
	// Known devices checking later count as checks, not as new devices,
	// through this State and after a restart.
	s.RecordCheck(ev("shop", "d1", state.ActionCheck, "1.0.1", 180_000))
	if err := s.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	wantCounts(t, stats(t, s, "shop"), "shop/1.0.1", 1, state.Counts{Checks: 4, Devices: 2})
	s.Close()
	s2 := open()
	s2.RecordCheck(ev("shop", "d2", state.ActionCheck, "1.0.1", 180_000))
	s2.RecordCheck(ev("shop", "d3", state.ActionCheck, "1.0.1", 180_000))
	if err := s2.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	wantCounts(t, stats(t, s2, "shop"), "shop/1.0.1", 1, state.Counts{Checks: 6, Devices: 3})
}

func testFailed(t *testing.T, b Backend) {
	open, _ := opener(t, b)
	s := open()
	ctx := context.Background()
	record(t, s, ev("shop", "d1", state.ActionUpdateFail, "1.0.1", 1), ev("shop", "d2", "set_fail", "1.0.1", 1))
	s.Close()
	s = open()
	for _, c := range []struct {
		device, version string
		want            bool
	}{{"d1", "1.0.1", true}, {"d1", "1.0.2", false}, {"d2", "1.0.1", false}, {"d3", "1.0.1", false}} {
		got, err := s.Failed(ctx, "shop", c.device, c.version)
		if err != nil || got != c.want {
			t.Errorf("Failed(shop, %s, %s) = %v, %v; want %v", c.device, c.version, got, err, c.want)
		}
	}
	if got, err := s.Failed(ctx, "other", "d1", "1.0.1"); err != nil || got {
		t.Errorf("Failed(other, d1, 1.0.1) = %v, %v; want false", got, err)
	}
}

func testFloors(t *testing.T, b Backend) {
	open, _ := opener(t, b)
	s := open()
	ctx := context.Background()
	raise := func(in, want map[string]int64) {
		t.Helper()
		got, err := s.RaiseFloors(ctx, in)
		if err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("RaiseFloors(%v) = %v, want %v", in, got, want)
		}
	}
	raise(map[string]int64{state.ACLFloor: 3, "shop/production": 10}, map[string]int64{state.ACLFloor: 3, "shop/production": 10})
	raise(map[string]int64{state.ACLFloor: 2, "shop/beta": 1}, map[string]int64{state.ACLFloor: 3, "shop/beta": 1})
	raise(map[string]int64{"shop/production": 11}, map[string]int64{"shop/production": 11})
	s.Close()
	s = open()
	got, err := s.Floors(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if want := map[string]int64{state.ACLFloor: 3, "shop/production": 11, "shop/beta": 1}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("Floors = %v, want %v", got, want)
	}
}

func testHourly(t *testing.T, b Backend) {
	open, c := opener(t, b)
	s := open()
	record(t, s, ev("shop", "d1", state.ActionCheck, "1.0.1", 0), ev("shop", "d1", state.ActionDownloadComplete, "1.0.1", 0))
	c.set(start.Add(time.Hour))
	record(t, s, ev("shop", "d1", state.ActionCheck, "1.0.1", 1), ev("shop", "d2", state.ActionDownloadComplete, "1.0.1", 0),
		ev("shop", "d1", state.ActionDownloadComplete, "1.0.1", 1), ev("shop", "d4", "set", "1.0.1", 0))
	c.set(start.Add(5 * time.Hour))
	record(t, s, ev("shop", "d3", state.ActionCheck, "1.0.1", 1))
	hs, err := s.Hourly(context.Background(), "shop", start.Truncate(time.Hour), start.Add(2*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	slices.SortFunc(hs, func(a, b state.HourCounts) int { return a.Hour.Compare(b.Hour) })
	want := []state.HourCounts{
		{BuildCounts: state.BuildCounts{App: "shop", Version: "1.0.1", Number: 1, Counts: state.Counts{Checks: 1, DownloadsCompleted: 1, Devices: 1}},
			Installs: 1, Hour: start.Truncate(time.Hour)},
		{BuildCounts: state.BuildCounts{App: "shop", Version: "1.0.1", Number: 1, Counts: state.Counts{Checks: 1, DownloadsCompleted: 1, Devices: 2}},
			Installs: 2, Hour: start.Truncate(time.Hour).Add(time.Hour)}, // d2 completed, d4 set; d1 installed before
	}
	if !slices.Equal(hs, want) {
		t.Fatalf("Hourly = %+v, want %+v", hs, want)
	}
}

func testPrune(t *testing.T, b Backend) {
	open, c := opener(t, b)
	s := open()
	ctx := context.Background()
	old := ev("shop", "d1", state.ActionUpdateFail, "1.0.1", 1)
	record(t, s, old)
	c.set(start.Add(48 * time.Hour))
	record(t, s, ev("shop", "d2", state.ActionCheck, "1.0.1", 1))
	n, err := s.Prune(ctx, start.Add(24*time.Hour))
	if err != nil || n != 1 {
		t.Fatalf("Prune = %d, %v; want 1", n, err)
	}
	wantCounts(t, stats(t, s, "shop"), "shop/1.0.1", 1, state.Counts{Checks: 1, UpdatesFailed: 1, Devices: 2})
	if f, err := s.Failed(ctx, "shop", "d1", "1.0.1"); err != nil || !f {
		t.Fatalf("Failed after Prune = %v, %v; want true", f, err)
	}
}

func testHalts(t *testing.T, b Backend) {
	open, _ := opener(t, b)
	s := open()
	ctx := context.Background()
	h1 := state.Halt{App: "shop", Channel: "production", Rollout: "r1", Reason: "crash rate", At: start.Add(1234567891)}
	h2 := state.Halt{App: "shop", Channel: "beta", Rollout: "r2", Reason: "manual", At: start.Add(time.Minute)}
	stored1 := h1
	stored1.At = start.Add(1234 * time.Millisecond) // as stored: milliseconds
	for _, c := range []struct {
		h, want state.Halt
		first   bool
	}{
		{h1, stored1, true}, {h2, h2, true},
		{state.Halt{App: "shop", Channel: "production", Rollout: "r1", Reason: "again", At: start.Add(time.Hour)}, stored1, false},
		{state.Halt{App: "other", Channel: "production", Rollout: "r1", Reason: "x", At: start}, state.Halt{App: "other", Channel: "production", Rollout: "r1", Reason: "x", At: start}, true},
	} {
		got, first, err := s.Halt(ctx, c.h)
		if err != nil || got != c.want || first != c.first {
			t.Fatalf("Halt(%+v) = %+v, %v, %v; want %+v, %v", c.h, got, first, err, c.want, c.first)
		}
	}
	s.Close()
	s = open()
	got, err := s.Halts(ctx, "shop")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, []state.Halt{stored1, h2}) {
		t.Fatalf("Halts = %+v, want %+v", got, []state.Halt{stored1, h2})
	}
	if _, first, err := s.Halt(ctx, h2); err != nil || first {
		t.Fatalf("Halt of a stored decision after reopening: first %v, %v; want false", first, err)
	}
}

// grouped is ev from a device in a rollout's cohort, sent from group.
func grouped(app, device, action, version string, ts int64, group string) state.Event {
	e := ev(app, device, action, version, ts)
	e.Group = group
	return e
}

func wantHealth(t *testing.T, s state.State, app, version string, perGroup int64, want state.RolloutCounts) {
	t.Helper()
	got, err := s.Health(context.Background(), app, version, perGroup)
	if err != nil || got != want {
		t.Fatalf("Health(%s, %s, %d) = %+v, %v; want %+v", app, version, perGroup, got, err, want)
	}
}

// testHealth: a candidate's devices are those whose events came with a
// group, each counted once in the group it first came from, and its
// failures those of them that reported an Unhealthy action, whatever else
// they reported and however often, before being counted or after; both
// survive pruning and reopening.
func testHealth(t *testing.T, b Backend) {
	open, c := opener(t, b)
	s := open()
	ctx := context.Background()
	const g1, g2 = "198.51.100.0/24", "2001:db8:1:2::/64"
	record(t, s,
		ev("shop", "d1", "set_fail", "2.0.0", 1), // failed before it is counted
		grouped("shop", "d1", state.ActionCheck, "2.0.0", 1, g1), grouped("shop", "d2", state.ActionCheck, "2.0.0", 1, g1),
		grouped("shop", "d3", "download_complete", "2.0.0", 1, g2),
		grouped("shop", "d1", "set_fail", "2.0.0", 3, g2), grouped("shop", "d1", "unzip_fail", "2.0.0", 4, g1),
		grouped("shop", "d2", "app_crash_native", "2.0.0", 2, g1), grouped("shop", "d3", "download_fail", "2.0.0", 2, g2),
		ev("shop", "d4", "update_fail", "2.0.0", 2), ev("shop", "d5", "download_complete", "2.0.0", 2), // never counted
		grouped("shop", "d1", "set_fail", "1.0.0", 2, g1), grouped("other", "d1", "update_fail", "2.0.0", 2, g1))
	s.RecordCheck(grouped("shop", "d6", state.ActionCheck, "2.0.0", 60_000, g2))
	if err := s.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	record(t, s, grouped("shop", "d1", "set_fail", "2.0.0", 3, g2)) // sent again
	want := state.RolloutCounts{Reported: 4, Devices: 4, Failed: 2}
	wantHealth(t, s, "shop", "2.0.0", 0, want)
	wantHealth(t, s, "shop", "2.0.0", 100, want)
	// A group of 2 devices, both failed, and one of 2, none failed, each
	// weighed as 1 device: 1 failed of 2.
	wantHealth(t, s, "shop", "2.0.0", 1, state.RolloutCounts{Reported: 4, Devices: 2, Failed: 1})
	wantHealth(t, s, "shop", "1.0.0", 0, state.RolloutCounts{Reported: 1, Devices: 1, Failed: 1})
	wantHealth(t, s, "shop", "3.0.0", 0, state.RolloutCounts{})

	c.set(start.Add(48 * time.Hour))
	if _, err := s.Prune(ctx, start.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s = open()
	wantHealth(t, s, "shop", "2.0.0", 0, want)
	// A device counted stays in its first group; a device counted from
	// another State, or after reopening, too.
	record(t, s, grouped("shop", "d3", "update_fail", "2.0.0", 9, g1), grouped("shop", "d7", "set", "2.0.0", 9, g1))
	wantHealth(t, s, "shop", "2.0.0", 0, state.RolloutCounts{Reported: 5, Devices: 5, Failed: 3})
	// g1: d1, d2 (failed), d7; g2: d3 (failed), d6: weighed as 2 each,
	// 2·2/3 + 1·2/2 failed.
	got, err := s.Health(ctx, "shop", "2.0.0", 2)
	if err != nil || got.Reported != 5 || got.Devices != 4 || math.Abs(got.Failed-(4.0/3+1)) > 1e-9 {
		t.Fatalf("Health with 2 per group = %+v, %v; want 5 reported, 4 devices, %.3f failed", got, err, 4.0/3+1)
	}
}

// testDilution: device ids made up in one group, however many, weigh as
// perGroup devices: they cannot hide the failure rate of the devices in
// other groups. Failures made up in one group likewise weigh as perGroup.
func testDilution(t *testing.T, b Backend) {
	open, _ := opener(t, b)
	s := open()
	var evs []state.Event
	for i := range 29 { // real devices, each behind its own address, 12 failed
		g := fmt.Sprintf("192.0.2.%d", i)
		evs = append(evs, grouped("demo", fmt.Sprintf("real-%d", i), state.ActionCheck, "6.0.0", 1, fmt.Sprintf("10.%d.0.0/24", i)))
		if i < 12 {
			evs = append(evs, grouped("demo", fmt.Sprintf("real-%d", i), state.ActionUpdateFail, "6.0.0", 2, g))
		}
	}
	for i := range 1000 {
		evs = append(evs, grouped("demo", fmt.Sprintf("forged-%d", i), "set", "6.0.0", 1, "203.0.113.0/24"))
	}
	record(t, s, evs...)
	wantHealth(t, s, "demo", "6.0.0", 0, state.RolloutCounts{Reported: 1029, Devices: 1029, Failed: 12})
	wantHealth(t, s, "demo", "6.0.0", 20, state.RolloutCounts{Reported: 1029, Devices: 49, Failed: 12})
}

// testRetries: RetryLimit distinct retry failures of a device for a build
// make it failed, as an update_fail does, for good; a State applies its
// limit to the events stored before it opened.
func testRetries(t *testing.T, b Backend) {
	fresh := b.Fresh(t)
	open := func(limit int) state.State {
		s := fresh(state.Options{Log: zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel), RetryLimit: limit})
		t.Cleanup(func() { s.Close() })
		return s
	}
	ctx := context.Background()
	failed := func(s state.State, device, version string) bool {
		t.Helper()
		f, err := s.Failed(ctx, "shop", device, version)
		if err != nil {
			t.Fatal(err)
		}
		return f
	}
	s := open(0)
	record(t, s, ev("shop", "d1", "set_fail", "2.0.0", 2), ev("shop", "d1", "checksum_fail", "2.0.0", 3),
		ev("shop", "d1", "download_fail", "2.0.0", 4), ev("shop", "d1", "set_fail", "1.0.0", 2))
	record(t, s, ev("shop", "d1", "set_fail", "2.0.0", 2)) // sent again: counts once
	if failed(s, "d1", "2.0.0") {
		t.Fatal("failed after two retries; the limit is 3")
	}
	record(t, s, ev("shop", "d1", "unzip_fail", "2.0.0", 4))
	if !failed(s, "d1", "2.0.0") || failed(s, "d1", "1.0.0") {
		t.Fatal("after three retries of 2.0.0 and one of 1.0.0, want 2.0.0 failed for the device and 1.0.0 not")
	}
	s.Close()
	s = open(1) // a lower limit applies to what was stored
	if !failed(s, "d1", "1.0.0") || failed(s, "d2", "2.0.0") {
		t.Fatal("with retry limit 1, want 1.0.0 failed for d1 and nothing for d2")
	}
	if _, err := s.Prune(ctx, time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s = open(0)
	if !failed(s, "d1", "2.0.0") || !failed(s, "d1", "1.0.0") {
		t.Fatal("a failure from retries was lost when raw events were pruned")
	}
}

// testChannels: a device's chosen channel is stored, replaced and forgotten.
func testChannels(t *testing.T, b Backend) {
	open, _ := opener(t, b)
	s := open()
	ctx := context.Background()
	for _, c := range [][3]string{{"shop", "d1", "beta"}, {"shop", "d2", "beta"}, {"shop", "d1", "qa"}, {"kiosk", "d1", "beta"}, {"shop", "d2", ""}} {
		if err := s.SetChannel(ctx, c[0], c[1], c[2]); err != nil {
			t.Fatal(err)
		}
	}
	s.Close()
	got := map[string]string{}
	if err := open().Channels(ctx, func(app, device, channel string) { got[app+"/"+device] = channel }); err != nil {
		t.Fatal(err)
	}
	if want := map[string]string{"shop/d1": "qa", "kiosk/d1": "beta"}; !maps.Equal(got, want) {
		t.Fatalf("Channels = %v, want %v", got, want)
	}
}

func testClosed(t *testing.T, b Backend) {
	open, _ := opener(t, b)
	s := open()
	ctx := context.Background()
	if err := s.Ping(ctx); err != nil {
		t.Fatalf("Ping: %v", err)
	}
	s.RecordCheck(ev("shop", "d1", state.ActionCheck, "1.0.1", 0))
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if err := s.Record(ctx, ev("shop", "d1", state.ActionDownloadStart, "1.0.1", 0)); !errors.Is(err, state.ErrClosed) {
		t.Fatalf("Record after Close = %v, want ErrClosed", err)
	}
	if err := s.Ping(ctx); err == nil {
		t.Fatal("Ping after Close succeeded")
	}
	s = open()
	wantCounts(t, stats(t, s, "shop"), "shop/1.0.1", 1, state.Counts{Checks: 1, Devices: 1})
}

// failedSoon fails unless s reports device failed on version 1.0.1 of app
// within SharedDelay.
func failedSoon(t *testing.T, s state.State, app, device string) {
	t.Helper()
	for deadline := time.Now().Add(SharedDelay); ; time.Sleep(time.Millisecond) {
		f, err := s.Failed(context.Background(), app, device, "1.0.1")
		if err == nil && f {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("Failed(%s) = %v, %v after %s; want true", device, f, err, SharedDelay)
		}
	}
}

// testShared runs two States on one database at once, as two trackers.
func testShared(t *testing.T, b Backend) {
	open, _ := opener(t, b)
	s1, s2 := open(), open()
	ctx := context.Background()
	record(t, s1, ev("shop", "d1", state.ActionUpdateFail, "1.0.1", 1))
	failedSoon(t, s2, "shop", "d1")
	// Retries count whichever State took them.
	record(t, s1, ev("kiosk", "d9", "set_fail", "1.0.1", 1))
	record(t, s2, ev("kiosk", "d9", "checksum_fail", "1.0.1", 2))
	record(t, s1, ev("kiosk", "d9", "unzip_fail", "1.0.1", 3))
	failedSoon(t, s1, "kiosk", "d9")
	failedSoon(t, s2, "kiosk", "d9")
	if _, err := s1.RaiseFloors(ctx, map[string]int64{"shop/production": 9}); err != nil {
		t.Fatal(err)
	}
	got, err := s2.RaiseFloors(ctx, map[string]int64{"shop/production": 5})
	if err != nil || got["shop/production"] != 9 {
		t.Fatalf("RaiseFloors through the other State = %v, %v; want 9", got, err)
	}
	e := ev("shop", "d2", state.ActionDownloadStart, "1.0.1", 1)
	record(t, s1, e)
	record(t, s2, e)
	wantCounts(t, stats(t, s2, "shop"), "shop/1.0.1", 1, state.Counts{DownloadsStarted: 1, UpdatesFailed: 1, Devices: 2})

	// Health counts what every State stored, each device once, in the
	// group it first came from through any of them.
	record(t, s1, grouped("shop", "d3", state.ActionCheck, "2.0.0", 1, "g1"), grouped("shop", "d4", state.ActionCheck, "2.0.0", 1, "g1"))
	record(t, s2, grouped("shop", "d3", state.ActionUpdateFail, "2.0.0", 2, "g2"), grouped("shop", "d5", "set", "2.0.0", 1, "g2"))
	wantHealth(t, s1, "shop", "2.0.0", 1, state.RolloutCounts{Reported: 3, Devices: 2, Failed: 0.5})
	wantHealth(t, s2, "shop", "2.0.0", 0, state.RolloutCounts{Reported: 3, Devices: 3, Failed: 1})

	// Halts decided at once through both States: one stores its decision,
	// and both get that one.
	h := state.Halt{App: "shop", Channel: "production", Rollout: "r9", At: start}
	var wg sync.WaitGroup
	var firsts atomic.Int64
	halts := make([]state.Halt, 2)
	for i, s := range []state.State{s1, s2} {
		wg.Go(func() {
			h := h
			h.Reason, h.At = fmt.Sprintf("tracker %d", i), h.At.Add(time.Duration(i)*time.Second)
			stored, first, err := s.Halt(ctx, h)
			if err != nil {
				t.Error(err)
			}
			if first {
				firsts.Add(1)
			}
			halts[i] = stored
		})
	}
	wg.Wait()
	if firsts.Load() != 1 || halts[0] != halts[1] {
		t.Fatalf("concurrent halts: %d stored first, got %+v; want 1 and the same decision for both", firsts.Load(), halts)
	}
}
