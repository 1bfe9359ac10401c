package sqlite_test

import (
	"context"
	"database/sql"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/cartona/deploy/state"
	"github.com/cartona/deploy/state/sqlite"
	"github.com/cartona/deploy/state/statetest"
)

func TestConformance(t *testing.T) {
	statetest.Run(t, statetest.Backend{Fresh: func(t *testing.T) func(state.Options) state.State {
		path := filepath.Join(t.TempDir(), "state.db")
		return func(o state.Options) state.State {
			s, err := sqlite.Open(path, o)
			if err != nil {
				t.Fatal(err)
			}
			return s
		}
	}})
}

// TestMigrateFromVersion2 opens a database written by the tracker before
// the hourly counts existed: its events are counted, its failures block
// and its floors stay.
func TestMigrateFromVersion2(t *testing.T) {
	path := filepath.Join(t.TempDir(), "events.db")
	old, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	hour := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC).UnixMilli()
	_, err = old.Exec(`
CREATE TABLE events (app TEXT NOT NULL, device TEXT NOT NULL, action TEXT NOT NULL, version TEXT NOT NULL, ts INTEGER NOT NULL,
	number INTEGER NOT NULL DEFAULT 0, old_version TEXT NOT NULL DEFAULT '', platform TEXT NOT NULL DEFAULT '',
	plugin_version TEXT NOT NULL DEFAULT '', source TEXT NOT NULL DEFAULT '', received INTEGER NOT NULL,
	PRIMARY KEY (app, device, action, version, ts)) WITHOUT ROWID;
CREATE INDEX events_by_build ON events (app, version);
CREATE INDEX events_update_fail ON events (app, device, version) WHERE action = 'update_fail';
CREATE TABLE floors (name TEXT PRIMARY KEY, version INTEGER NOT NULL) WITHOUT ROWID;
PRAGMA user_version = 2;
INSERT INTO floors VALUES ('acl', 4), ('shop/production', 9);
INSERT INTO events (app, device, action, version, ts, number, received) VALUES
	('shop', 'd1', 'check', '1.0.1', 0, 3, ?1), ('shop', 'd1', 'check', '1.0.1', 60000, 3, ?1 + 3600000),
	('shop', 'd1', 'download_complete', '1.0.1', 0, 3, ?1), ('shop', 'd1', 'download_complete', '1.0.1', 5, 3, ?1 + 3600000),
	('shop', 'd2', 'download_start', '1.0.1', 1, 3, ?1 + 3600000), ('shop', 'd2', 'unzip_fail', '1.0.1', 2, 3, ?1 + 3600000),
	('shop', 'd3', 'update_fail', '1.0.1', 1, 3, ?1), ('shop', 'd3', 'set_fail', '1.0.1', 2, 3, ?1);`, hour)
	old.Close()
	if err != nil {
		t.Fatal(err)
	}
	db, err := sqlite.Open(path, state.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx := context.Background()
	bs, err := db.Stats(ctx, "shop")
	want := state.BuildCounts{App: "shop", Version: "1.0.1", Number: 3, Counts: state.Counts{Checks: 2, DownloadsStarted: 1,
		DownloadsCompleted: 1, DownloadsFailed: 1, UpdatesFailed: 2, Devices: 3}}
	if err != nil || len(bs) != 1 || bs[0] != want {
		t.Fatalf("Stats = %+v, %v; want %+v", bs, err, want)
	}
	hs, err := db.Hourly(ctx, "shop", time.UnixMilli(hour+3600000), time.UnixMilli(hour+7200000))
	if err != nil || len(hs) != 1 || hs[0].Devices != 1 || hs[0].DownloadsCompleted != 0 || hs[0].Checks != 1 {
		t.Fatalf("Hourly of the second hour = %+v, %v; want 1 check and device d2 first seen", hs, err)
	}
	if f, err := db.Failed(ctx, "shop", "d3", "1.0.1"); err != nil || !f {
		t.Fatalf("Failed = %v, %v", f, err)
	}
	floors, err := db.Floors(ctx)
	if err != nil || floors[state.ACLFloor] != 4 || floors["shop/production"] != 9 {
		t.Fatalf("Floors = %v, %v", floors, err)
	}
	// Devices seen before the upgrade count as before, each on its own.
	if c, err := db.Health(ctx, "shop", "1.0.1", 1); err != nil || c != (state.RolloutCounts{Reported: 3, Devices: 3, Failed: 2}) {
		t.Fatalf("Health = %+v, %v; want 3 devices, 2 failed (d2 and d3)", c, err)
	}
}

// TestMigrateFromVersion3 opens a database of schema 3, without broken
// marks or device channels: its failures count in a candidate's health.
func TestMigrateFromVersion3(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	db, err := sqlite.Open(path, state.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := db.Record(ctx, state.Event{App: "shop", Device: "d1", Action: "set_fail", Version: "2.0.0", TS: 1},
		state.Event{App: "shop", Device: "d2", Action: "check", Version: "2.0.0", TS: 1}); err != nil {
		t.Fatal(err)
	}
	db.Close()
	old, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	_, err = old.Exec(`DELETE FROM marks WHERE kind IN ('broken', 'cohort'); ALTER TABLE marks DROP COLUMN grp;
		DROP INDEX events_retry; DROP TABLE device_channels; PRAGMA user_version = 3;`)
	old.Close()
	if err != nil {
		t.Fatal(err)
	}
	if db, err = sqlite.Open(path, state.Options{}); err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if c, err := db.Health(ctx, "shop", "2.0.0", 1); err != nil || c != (state.RolloutCounts{Reported: 2, Devices: 2, Failed: 1}) {
		t.Fatalf("Health = %+v, %v; want 2 devices, 1 failed", c, err)
	}
	if err := db.SetChannel(ctx, "shop", "d1", "beta"); err != nil {
		t.Fatal(err)
	}
}

// TestPrivateModes checks that the database, which holds device ids, and
// its -wal and -shm files are readable by their owner only, as are the
// folders Open creates for it.
func TestPrivateModes(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("Windows has no Unix modes")
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "var", "deploy", "events.db")
	db, err := sqlite.Open(path, state.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ev := state.Event{App: "shop", Device: "1f2e3d4c-0000-4000-8000-000000000001", Action: "download_complete", Version: "1.0.0", TS: 1, Source: "capgo"}
	if err := db.Record(context.Background(), ev); err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]fs.FileMode{
		filepath.Join(dir, "var"):           fs.ModeDir | 0o700,
		filepath.Join(dir, "var", "deploy"): fs.ModeDir | 0o700,
		path:                                0o600,
		path + "-wal":                       0o600,
		path + "-shm":                       0o600,
	} {
		fi, err := os.Stat(name)
		if err != nil {
			t.Error(err)
		} else if fi.Mode() != want {
			t.Errorf("%s has mode %v, want %v", name, fi.Mode(), want)
		}
	}
}
