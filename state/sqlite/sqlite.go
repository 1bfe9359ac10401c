// Package sqlite is the embedded tracker state: one SQLite database in WAL
// mode with synchronous=FULL, for a tracker that runs as one process.
package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	_ "modernc.org/sqlite" // the "sqlite" database/sql driver

	"github.com/cartona/deploy/state"
)

// DB is a state.State in an SQLite file. Its writer is a single connection
// that commits the events of many requests in one transaction; readers use
// their own connections.
type DB struct {
	*state.Batcher
	w, r *sql.DB
	ins  [3]*sql.Stmt // event, mark, hourly
	now  func() time.Time
	seen *state.Seen // seen marks stored, not inserted again
	// retryLimit is state.Options.Retries.
	retryLimit int

	failed *state.FailedSet
}

var _ state.State = (*DB)(nil)

const (
	insertEvent = `INSERT OR IGNORE INTO events
	(app, device, action, version, ts, number, old_version, platform, plugin_version, source, received)
	VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`
	insertMark   = `INSERT OR IGNORE INTO marks (app, version, device, kind, hour, grp) VALUES (?, ?, ?, ?, ?, ?)`
	upsertHourly = `INSERT INTO hourly (app, version, hour, number, checks, downloads_started, downloads_completed,
	downloads_failed, updates_failed, devices, installs) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
	ON CONFLICT (app, hour, version) DO UPDATE SET number = max(number, excluded.number),
	checks = checks + excluded.checks, downloads_started = downloads_started + excluded.downloads_started,
	downloads_completed = downloads_completed + excluded.downloads_completed,
	downloads_failed = downloads_failed + excluded.downloads_failed,
	updates_failed = updates_failed + excluded.updates_failed, devices = devices + excluded.devices,
	installs = installs + excluded.installs`
)

// Open opens (creating it if missing) the database at path and brings its
// schema up to date.
func Open(path string, opts state.Options) (*DB, error) {
	if path == "" {
		return nil, errors.New("no SQLite database path")
	}
	if strings.ContainsAny(path, "?#") {
		return nil, fmt.Errorf("SQLite database path %q contains '?' or '#'; choose another path", path)
	}
	// The database holds device ids: its folders, and the file itself, are
	// its owner's only. SQLite gives the -wal and -shm files the mode of
	// the database file, so creating that one 0600 before SQLite opens it
	// (which would create it 0644) is enough.
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("state database: %w", err)
	}
	if f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600); err == nil {
		f.Close() // an empty file is an empty database
	} else if !errors.Is(err, fs.ErrExist) {
		return nil, fmt.Errorf("state database: %w", err)
	}
	d, err := open(path, opts)
	if err != nil {
		return nil, fmt.Errorf("state database %s: %w", path, err)
	}
	return d, nil
}

func open(path string, opts state.Options) (_ *DB, err error) {
	const pragmas = "?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_pragma=synchronous(FULL)"
	d := &DB{now: opts.Clock(), seen: state.NewSeen(), retryLimit: opts.Retries(), failed: state.NewFailedSet()}
	if d.w, err = sql.Open("sqlite", path+pragmas+"&_txlock=immediate"); err != nil {
		return nil, err
	}
	d.w.SetMaxOpenConns(1)
	d.w.SetMaxIdleConns(1)
	d.w.SetConnMaxLifetime(0)
	if d.r, err = sql.Open("sqlite", path+pragmas+"&_pragma=query_only(1)"); err != nil {
		d.w.Close()
		return nil, err
	}
	d.r.SetMaxOpenConns(4)
	if err = d.prepare(); err == nil {
		err = d.blockRetried()
	}
	if err == nil {
		err = d.loadFailed()
	}
	if err != nil {
		d.closeDB()
		return nil, err
	}
	d.Batcher = state.NewBatcher(d.commit, opts)
	return d, nil
}

// prepare migrates the schema and prepares the writer's statements.
func (d *DB) prepare() error {
	var v int
	if err := d.w.QueryRow(`PRAGMA user_version`).Scan(&v); err != nil {
		return err
	}
	if v > schemaVersion {
		return fmt.Errorf("its schema version %d is newer than this deploy knows (%d); upgrade deploy", v, schemaVersion)
	}
	if v < schemaVersion {
		migration := schemaV5
		switch {
		case v < 3:
			migration = schemaV2 + schemaV3 + schemaV4 + schemaV5
		case v < 4:
			migration = schemaV4 + schemaV5
		}
		tx, err := d.w.Begin()
		if err != nil {
			return err
		}
		if _, err := tx.Exec(migration); err != nil {
			tx.Rollback()
			return err
		}
		if err := tx.Commit(); err != nil {
			return err
		}
	}
	for i, q := range []string{insertEvent, insertMark, upsertHourly} {
		var err error
		if d.ins[i], err = d.w.Prepare(q); err != nil {
			return err
		}
	}
	return nil
}

// Close implements state.State.
func (d *DB) Close() error {
	if !d.Batcher.Close() {
		return nil
	}
	return d.closeDB()
}

func (d *DB) closeDB() error {
	var errs []error
	for _, s := range d.ins {
		if s != nil {
			errs = append(errs, s.Close())
		}
	}
	errs = append(errs, d.w.Close(), d.r.Close())
	return errors.Join(errs...)
}

// commit stores a batch in one transaction: the events but checks, their
// marks, the hourly counts of those that were new, and a failed mark for
// each device whose retries of a build reach the limit.
func (d *DB) commit(evs []state.Event) error {
	tx, err := d.w.Begin()
	if err != nil {
		return err
	}
	defer tx.Rollback()
	received := d.now()
	hour := state.HourOf(received)
	ev, mk, hr := tx.Stmt(d.ins[0]), tx.Stmt(d.ins[1]), tx.Stmt(d.ins[2])
	var stored []state.Event
	for _, v := range evs {
		if v.Action == state.ActionCheck { // counted and marked, not kept (see RecordCheck)
			stored = append(stored, v)
			continue
		}
		if ok, err := insert(ev, v.App, v.Device, v.Action, v.Version, v.TS, v.Number, v.OldVersion,
			v.Platform, v.PluginVersion, v.Source, received.UnixMilli()); err != nil {
			return err
		} else if ok {
			stored = append(stored, v)
		}
	}
	var marks []state.Mark
	unstored := d.seen.Unstored(state.Marks(stored, hour))
	for _, m := range unstored {
		if ok, err := insert(mk, m.App, m.Version, m.Device, m.Kind, m.Hour, m.Group); err != nil {
			return err
		} else if ok {
			marks = append(marks, m)
		}
	}
	var blocked []state.Mark
	for _, m := range state.Retried(evs, hour) {
		var n int
		if err := tx.QueryRow(`SELECT COUNT(*) FROM events WHERE app = ? AND device = ? AND version = ? AND `+state.RetrySQL,
			m.App, m.Device, m.Version).Scan(&n); err != nil {
			return err
		}
		if n >= d.retryLimit {
			if _, err := insert(mk, m.App, m.Version, m.Device, m.Kind, m.Hour, ""); err != nil {
				return err
			}
			blocked = append(blocked, m)
		}
	}
	for _, c := range state.Deltas(stored, marks, hour) {
		if _, err := hr.Exec(c.App, c.Version, c.Hour, c.Number, c.Checks, c.DownloadsStarted,
			c.DownloadsCompleted, c.DownloadsFailed, c.UpdatesFailed, c.Devices, c.Installs); err != nil {
			return err
		}
	}
	if err := tx.Commit(); err != nil {
		return err
	}
	d.seen.Stored(unstored)
	d.failed.AddMarks(marks, blocked)
	return nil
}

// blockRetried marks failed the builds that devices retried RetryLimit
// times before the State opened (or with a higher limit).
func (d *DB) blockRetried() error {
	_, err := d.w.Exec(`INSERT OR IGNORE INTO marks (app, version, device, kind, hour)
		SELECT app, version, device, 'failed', MIN(received) / 3600000 * 3600000 FROM events WHERE `+state.RetrySQL+`
		GROUP BY app, version, device HAVING COUNT(*) >= ?`, d.retryLimit)
	return err
}

// insert runs an INSERT OR IGNORE and reports whether it added the row.
func insert(stmt *sql.Stmt, args ...any) (bool, error) {
	res, err := stmt.Exec(args...)
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

func (d *DB) loadFailed() error {
	rows, err := d.r.Query(`SELECT app, device, version FROM marks WHERE kind = 'failed'`)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var app, device, version string
		if err := rows.Scan(&app, &device, &version); err != nil {
			return err
		}
		d.failed.Add(app, device, version)
	}
	return rows.Err()
}

// Failed implements state.State from memory; only past state.MaxFailed
// failures does a miss read the database.
func (d *DB) Failed(ctx context.Context, app, device, version string) (bool, error) {
	if d.Closed() {
		return false, state.ErrClosed
	}
	if failed, complete := d.failed.Has(app, device, version); failed || complete {
		return failed, nil
	}
	var one int
	err := d.r.QueryRowContext(ctx, `SELECT 1 FROM marks WHERE app = ? AND version = ? AND device = ? AND kind = 'failed'`,
		app, version, device).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	return err == nil, err
}
