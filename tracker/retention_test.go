package tracker

import (
	"context"
	"database/sql"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cartona/deploy/state"
)

// TestRetention deletes the raw events older than Config.Retention when
// the tracker starts, keeps the newer ones, and keeps counting both.
func TestRetention(t *testing.T) {
	f := newFixture(t)
	f.publish("retailer", "production", "1.0.0")
	var clock atomic.Int64
	t0 := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	clock.Store(t0.UnixMilli())
	db := filepath.Join(t.TempDir(), "state.db")
	now := func() time.Time { return time.UnixMilli(clock.Load()) }
	open := func() state.State { return openStateWith(t, db, state.Options{Now: now}) } // events received on the same clock
	cfg := f.config(t)
	cfg.State, cfg.StatsToken, cfg.Now = open(), "tok", now
	_, base, stop := startStoppable(t, cfg)
	for i, at := range []time.Time{t0, t0.Add(30 * time.Hour)} {
		clock.Store(at.UnixMilli())
		ev := pluginEvent("device-1", "download_fail", "1.0.0", at.UnixMilli()+int64(i))
		if resp, body := do(t, nil, "POST", base+"/capgo/retailer/stats", mustJSON(t, ev)); resp.StatusCode != 200 {
			t.Fatalf("event %d: %s %s", i, resp.Status, body)
		}
	}
	stop()

	clock.Store(t0.Add(48 * time.Hour).UnixMilli())
	cfg.State, cfg.Retention = open(), 24*time.Hour
	_, base = startServer(t, cfg)
	raw, err := sql.Open("sqlite", db)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	var n int
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if err := raw.QueryRow(`SELECT count(*) FROM events`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n < 2 || time.Now().After(deadline) {
			break
		}
	}
	if n != 1 {
		t.Fatalf("%d raw events after the retention, want the newer 1", n)
	}
	st, err := GetStats(context.Background(), nil, base, "tok", "retailer")
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Builds) != 1 || st.Builds[0].DownloadsFailed != 2 {
		t.Fatalf("stats after the retention: %+v, want 2 failed downloads", st.Builds)
	}
}
