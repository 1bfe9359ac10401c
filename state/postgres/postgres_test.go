package postgres_test

import (
	"context"
	"os"
	"sync"
	"testing"

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
