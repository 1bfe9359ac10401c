package postgres_test

import (
	"context"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cartona/deploy/internal/pgtest"
	"github.com/cartona/deploy/state"
	"github.com/cartona/deploy/state/postgres"
	"github.com/cartona/deploy/state/statetest"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

func open(t *testing.T, url string, o state.Options) *postgres.DB {
	t.Helper()
	s, err := postgres.Open(context.Background(), url, o)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestConformance(t *testing.T) {
	statetest.Run(t, statetest.Backend{Shared: true, Fresh: func(t *testing.T) func(state.Options) state.State {
		url := pgtest.Database(t)
		return func(o state.Options) state.State { return open(t, url, o) }
	}})
}

// TestMigrateAtOnce starts several trackers on an empty database at once:
// the advisory lock makes each migration run once, and all of them work.
func TestMigrateAtOnce(t *testing.T) {
	url := pgtest.Database(t)
	var wg sync.WaitGroup
	dbs := make([]*postgres.DB, 4)
	errs := make([]error, len(dbs))
	for i := range dbs {
		wg.Go(func() { dbs[i], errs[i] = postgres.Open(context.Background(), url, state.Options{}) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("tracker %d: %v", i, err)
		}
		defer dbs[i].Close()
		if err := dbs[i].Record(context.Background(), state.Event{App: "a", Device: "d", Action: "check", Version: "1"}); err != nil {
			t.Fatalf("tracker %d: %v", i, err)
		}
	}
}

// TestUnreachable refuses connections to the database while a State is
// open: Ping and Record fail (the tracker answers 503, readiness fails)
// instead of hanging, and both work again once it is back.
func TestUnreachable(t *testing.T) {
	url := pgtest.Database(t)
	name := url[strings.LastIndex(url, "/")+1 : strings.Index(url, "?")]
	s := open(t, url, state.Options{})
	defer s.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ev := state.Event{App: "a", Device: "d", Action: state.ActionDownloadStart, Version: "1", TS: 1}
	pgtest.Exec(t, "ALTER DATABASE "+name+" ALLOW_CONNECTIONS false")
	pgtest.Exec(t, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '"+name+"'")
	if err := s.Ping(ctx); err == nil {
		t.Fatal("Ping succeeded while the database refuses connections")
	}
	if err := s.Record(ctx, ev); err == nil {
		t.Fatal("Record succeeded while the database refuses connections")
	}
	if _, err := s.Failed(ctx, "a", "d", "1"); err == nil {
		t.Fatal("Failed succeeded while the database refuses connections")
	}
	pgtest.Exec(t, "ALTER DATABASE "+name+" ALLOW_CONNECTIONS true")
	if err := s.Ping(ctx); err != nil {
		t.Fatalf("Ping once the database is back: %v", err)
	}
	if err := s.Record(ctx, ev); err != nil {
		t.Fatalf("Record once the database is back: %v", err)
	}
	if got, err := s.Stats(ctx, "a"); err != nil || len(got) != 1 || got[0].DownloadsStarted != 1 {
		t.Fatalf("Stats = %+v, %v; want the one event", got, err)
	}
}
