package state

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

// TestCommitFailuresLogged fails every commit for a while: the log says so
// once, then at most once per CommitLogInterval with how many failed since,
// and once when commits succeed again, not once per commit.
func TestCommitFailuresLogged(t *testing.T) {
	var mu sync.Mutex
	now := time.Unix(1_700_000_000, 0)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	var down atomic.Bool
	var logs bytes.Buffer
	b := NewBatcher(func([]Event) error {
		if down.Load() {
			return errors.New("connection refused")
		}
		return nil
	}, Options{Log: zerolog.New(&logs), Now: clock})
	defer b.Close()
	record := func(n int) {
		t.Helper()
		for i := range n {
			err := b.Record(context.Background(), Event{App: "shop", Device: "d", Action: "set", Version: "1", TS: int64(i)})
			if (err != nil) != down.Load() {
				t.Fatalf("Record: %v with the database down=%v", err, down.Load())
			}
			advance(time.Second)
		}
	}
	lines := func() []map[string]any {
		var out []map[string]any
		for _, l := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
			if l == "" {
				continue
			}
			var m map[string]any
			if err := json.Unmarshal([]byte(l), &m); err != nil {
				t.Fatalf("log line %q: %v", l, err)
			}
			out = append(out, m)
		}
		logs.Reset()
		return out
	}

	record(3)
	if got := lines(); len(got) != 0 {
		t.Fatalf("commits that succeed logged %v", got)
	}
	down.Store(true)
	record(9) // 9 s: the first failure only
	got := lines()
	if len(got) != 1 || got[0]["message"] != "event commit failed" || got[0]["level"] != "error" || got[0]["error"] != "connection refused" {
		t.Fatalf("first 9 s of failures logged %v, want one line", got)
	}
	record(21) // 21 s more: two summaries, 10 s apart
	got = lines()
	if len(got) != 2 || got[0]["message"] != "event commits still failing" || got[0]["failed_commits"] != 10.0 || got[1]["failed_commits"] != 10.0 {
		t.Fatalf("then 21 s of failures logged %v, want two summaries of 10 failed commits each", got)
	}
	down.Store(false)
	record(5)
	got = lines()
	if len(got) != 1 || got[0]["message"] != "event commits succeed again" || got[0]["level"] != "info" ||
		got[0]["failed_commits"] != 9.0 || got[0]["failing_for"] != "30s" {
		t.Fatalf("recovery logged %v, want one line with the 9 failures since the last summary and the outage's length", got)
	}
	down.Store(true)
	record(1)
	if got = lines(); len(got) != 1 || got[0]["message"] != "event commit failed" {
		t.Fatalf("a new outage logged %v, want its first failure", got)
	}
}
