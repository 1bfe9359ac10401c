package postgres_test

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

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
// instead of hanging, a failure recorded before is still known, and all
// work again once it is back.
func TestUnreachable(t *testing.T) {
	url := pgtest.Database(t)
	name := url[strings.LastIndex(url, "/")+1 : strings.Index(url, "?")]
	s := open(t, url, state.Options{})
	defer s.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := s.Record(ctx, state.Event{App: "a", Device: "d", Action: state.ActionUpdateFail, Version: "1", TS: 1}); err != nil {
		t.Fatal(err)
	}
	ev := state.Event{App: "a", Device: "d", Action: state.ActionDownloadStart, Version: "1", TS: 1}
	pgtest.Exec(t, "ALTER DATABASE "+name+" ALLOW_CONNECTIONS false")
	pgtest.Exec(t, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '"+name+"'")
	if err := s.Ping(ctx); err == nil {
		t.Fatal("Ping succeeded while the database refuses connections")
	}
	if err := s.Record(ctx, ev); err == nil {
		t.Fatal("Record succeeded while the database refuses connections")
	}
	if failed, err := s.Failed(ctx, "a", "d", "1"); !failed {
		t.Fatalf("Failed = %v, %v while the database refuses connections; want the failure recorded before", failed, err)
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

// eventually polls cond for up to 10 seconds.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal(what)
		}
	}
}

// TestFailuresFollowed: a tracker learns the failures another one records
// without being asked, also those recorded while its connection for them
// was lost, and answers correctly in between.
func TestFailuresFollowed(t *testing.T) {
	url := pgtest.Database(t)
	ctx := context.Background()
	a, b := open(t, url, state.Options{}), open(t, url, state.Options{})
	defer a.Close()
	defer b.Close()
	fail := func(device string) {
		t.Helper()
		if err := a.Record(ctx, state.Event{App: "a", Device: device, Action: state.ActionUpdateFail, Version: "1", TS: 1}); err != nil {
			t.Fatal(err)
		}
	}
	failed := func(s *postgres.DB, device string) bool {
		f, err := s.Failed(ctx, "a", device, "1")
		if err != nil {
			t.Fatal(err)
		}
		return f
	}
	if failed(b, "d1") {
		t.Fatal("d1 failed before any failure")
	}
	fail("d1")
	if !failed(a, "d1") {
		t.Fatal("the tracker that recorded the failure does not know it")
	}
	eventually(t, "the other tracker never learned the failure", func() bool { return failed(b, "d1") })

	// The trackers lose their connections for failures; b learns what a
	// records meanwhile, and after.
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	const listening = `FROM pg_stat_activity WHERE datname = current_database() AND application_name = 'deploy tracker: failures'`
	var killed int
	if err := conn.QueryRow(ctx, `SELECT count(pg_terminate_backend(pid)) `+listening).Scan(&killed); err != nil || killed != 2 {
		t.Fatalf("terminated %d listening connections (%v); want the 2 trackers'", killed, err)
	}
	fail("d2")
	eventually(t, "a failure recorded while the other tracker was not listening was missed", func() bool { return failed(b, "d2") })
	eventually(t, "the trackers did not listen again", func() bool {
		var n int
		if err := conn.QueryRow(ctx, `SELECT count(*) `+listening).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n == 2
	})
	fail("d3")
	eventually(t, "a failure recorded after the other tracker listened again was missed", func() bool { return failed(b, "d3") })
	if failed(b, "d4") {
		t.Fatal("d4 never failed")
	}
}

// TestMigrateFromFirstSchema opens a database that an earlier deploy left
// at schema version 1, holding events: the later migrations run at start,
// keep every row, and what they derive from old rows holds (three retries
// of a build block the device; a floor stays a floor; devices seen count
// toward a candidate's health as before, each on its own).
func TestMigrateFromFirstSchema(t *testing.T) {
	ctx := context.Background()
	url := pgtest.Database(t)
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	first, err := os.ReadFile("migrations/0001_state.sql")
	if err != nil {
		t.Fatal(err)
	}
	received := time.Now().UnixMilli()
	for _, sql := range []string{string(first),
		`CREATE TABLE schema_migrations (version bigint PRIMARY KEY, name text NOT NULL, applied timestamptz NOT NULL DEFAULT now())`,
		`INSERT INTO schema_migrations (version, name) VALUES (1, 'migrations/0001_state.sql')`,
		`INSERT INTO floors (name, version) VALUES ('acl', 7)`,
		`INSERT INTO marks (app, version, device, kind, hour) VALUES ('a', '2.0.0', 'retried', 'seen', 0), ('a', '2.0.0', 'fine', 'seen', 0)`,
	} {
		if _, err := conn.Exec(ctx, sql); err != nil {
			t.Fatal(err)
		}
	}
	for i, action := range []string{"set_fail", "checksum_fail", "unzip_fail", "download_complete"} {
		device := map[bool]string{true: "retried", false: "fine"}[i < 3]
		if _, err := conn.Exec(ctx, `INSERT INTO events (app, device, action, version, ts, received) VALUES ('a', $1, $2, '2.0.0', $3, $4)`,
			device, action, int64(1000+i), received); err != nil {
			t.Fatal(err)
		}
	}

	s := open(t, url, state.Options{})
	defer s.Close()
	rows, _ := conn.Query(ctx, `SELECT version FROM schema_migrations ORDER BY version`)
	versions, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil || !slices.Equal(versions, []int64{1, 2, 3, 4}) {
		t.Fatalf("schema versions after the upgrade: %v (%v); want 1, 2, 3, 4", versions, err)
	}
	if c, err := s.Health(ctx, "a", "2.0.0", 1); err != nil || c != (state.RolloutCounts{Reported: 2, Devices: 2, Failed: 1}) {
		t.Errorf("Health after the upgrade = %+v (%v); want 2 devices, 1 failed", c, err)
	}
	var events int
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM events`).Scan(&events); err != nil || events != 4 {
		t.Fatalf("%d events after the upgrade (%v); want the 4 stored before", events, err)
	}
	if failed, err := s.Failed(ctx, "a", "retried", "2.0.0"); err != nil || !failed {
		t.Errorf("a device that retried 2.0.0 three times before the upgrade: failed %v (%v); want blocked", failed, err)
	}
	if failed, err := s.Failed(ctx, "a", "fine", "2.0.0"); err != nil || failed {
		t.Errorf("a device that installed 2.0.0: failed %v (%v)", failed, err)
	}
	if got, err := s.RaiseFloors(ctx, map[string]int64{"acl": 6}); err != nil || got["acl"] != 7 {
		t.Errorf("raising floor acl to 6 after the upgrade gives %v (%v); want 7, stored before", got, err)
	}
}

// TestRetriesSplitAtOnce: two trackers record at the same moment the two
// retries that reach a device's limit, one each. Whichever commits second
// must see the other's retry and block the device: neither may count only
// its own. (Both insert the device's broken mark for the build, so the
// second waits on the first's row lock and counts after it commits.)
func TestRetriesSplitAtOnce(t *testing.T) {
	url := pgtest.Database(t)
	ctx := context.Background()
	opts := state.Options{RetryLimit: 2}
	a, b := open(t, url, opts), open(t, url, opts)
	defer a.Close()
	defer b.Close()
	const devices = 60
	for i := range devices {
		device := fmt.Sprintf("d%d", i)
		start := make(chan struct{})
		var wg sync.WaitGroup
		for j, s := range []*postgres.DB{a, b} {
			wg.Go(func() {
				<-start
				if err := s.Record(ctx, state.Event{App: "a", Device: device, Action: []string{"set_fail", "unzip_fail"}[j], Version: "1", TS: 1}); err != nil {
					t.Error(err)
				}
			})
		}
		close(start)
		wg.Wait()
	}
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var blocked int
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM marks WHERE kind = 'failed'`).Scan(&blocked); err != nil || blocked != devices {
		t.Fatalf("%d of %d devices blocked after two retries each, split between two trackers (%v)", blocked, devices, err)
	}
}
