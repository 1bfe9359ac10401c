package tracker

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"
	_ "modernc.org/sqlite" // the "sqlite" database/sql driver
)

// Actions the tracker records itself for the seed's API. Capgo actions are
// stored as the plugin sends them.
const (
	actionCheck            = "check"             // GET /build/latest, a Capgo update request
	actionDownloadStart    = "download_start"    // GET /build/download
	actionDownloadComplete = "download_complete" // GET /build/download/complete
	actionUpdateFail       = "update_fail"       // Capgo: the bundle did not call notifyAppReady
)

// event is one row of the events table. The primary key (app, device,
// action, version, ts) makes a resent event count once.
type event struct {
	App           string
	Device        string
	Action        string
	Version       string
	TS            int64 // milliseconds since the epoch, as the device sent it
	Number        int64 // build number, 0 if the version names no known build
	OldVersion    string
	Platform      string
	PluginVersion string
	Source        string // "seed" or "capgo"
}

const schema = `
CREATE TABLE IF NOT EXISTS events (
	app            TEXT    NOT NULL,
	device         TEXT    NOT NULL,
	action         TEXT    NOT NULL,
	version        TEXT    NOT NULL,
	ts             INTEGER NOT NULL,
	number         INTEGER NOT NULL DEFAULT 0,
	old_version    TEXT    NOT NULL DEFAULT '',
	platform       TEXT    NOT NULL DEFAULT '',
	plugin_version TEXT    NOT NULL DEFAULT '',
	source         TEXT    NOT NULL DEFAULT '',
	received       INTEGER NOT NULL,
	PRIMARY KEY (app, device, action, version, ts)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS events_by_build ON events (app, version);
CREATE INDEX IF NOT EXISTS events_update_fail ON events (app, device, version) WHERE action = 'update_fail';
CREATE TABLE IF NOT EXISTS floors (
	name    TEXT    PRIMARY KEY, -- "acl", or app "/" channel
	version INTEGER NOT NULL     -- the highest ACL version or channel sequence verified
) WITHOUT ROWID;
PRAGMA user_version = 2;
`

// aclFloor is the floors row of the ACL version; channel rows are named
// app "/" channel, so they never collide with it.
const aclFloor = "acl"

const insertSQL = `INSERT OR IGNORE INTO events
	(app, device, action, version, ts, number, old_version, platform, plugin_version, source, received)
	VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`

// Group commit limits: a batch holds at most this many events, and the
// queue this many waiting requests.
const (
	maxBatchEvents = 4096
	queueLen       = 4096
)

// maxRecentChecks bounds the set of checks recorded in the current minute.
const maxRecentChecks = 1 << 18

// maxFailedInMemory bounds the in-memory set of (app, device, version) that
// reported update_fail; past it, misses are looked up in the database.
const maxFailedInMemory = 1 << 20

var errClosed = errors.New("the event store is closed")

// events is the durable event log: an SQLite database in WAL mode with
// synchronous=FULL, written by a single goroutine that commits the events
// of many requests in one transaction (group commit) and answers each
// request only after its events are on disk.
type events struct {
	w, r    *sql.DB // writer (one connection) and readers
	ins     *sql.Stmt
	log     zerolog.Logger
	now     func() time.Time
	metrics *Metrics

	mu     sync.RWMutex // held shared by senders, exclusively by close
	closed bool
	queue  chan *batch
	done   chan struct{}

	checkMu     sync.Mutex
	checkMinute int64
	checks      map[string]struct{} // checks recorded in checkMinute

	failMu       sync.RWMutex
	failed       map[string]struct{}
	failOverflow bool
}

type batch struct {
	events []event
	done   chan error // nil: nobody waits
}

func openEvents(path string, log zerolog.Logger, now func() time.Time, metrics *Metrics) (*events, error) {
	if path == "" {
		return nil, errors.New("tracker: no event database path; set Config.DBPath")
	}
	if strings.ContainsAny(path, "?#") {
		return nil, fmt.Errorf("tracker: event database path %q contains '?' or '#'; choose another path", path)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("tracker: event database: %w", err)
	}
	const pragmas = "?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_pragma=synchronous(FULL)"
	w, err := sql.Open("sqlite", path+pragmas+"&_txlock=immediate")
	if err != nil {
		return nil, fmt.Errorf("tracker: open event database %s: %w", path, err)
	}
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxLifetime(0)
	if _, err := w.Exec(schema); err != nil {
		w.Close()
		return nil, fmt.Errorf("tracker: open event database %s: %w", path, err)
	}
	ins, err := w.Prepare(insertSQL)
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("tracker: event database %s: %w", path, err)
	}
	r, err := sql.Open("sqlite", path+pragmas+"&_pragma=query_only(1)")
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("tracker: open event database %s: %w", path, err)
	}
	r.SetMaxOpenConns(4)
	e := &events{w: w, r: r, ins: ins, log: log, now: now, metrics: metrics, queue: make(chan *batch, queueLen), done: make(chan struct{}),
		checks: map[string]struct{}{}, failed: map[string]struct{}{}}
	if err := e.loadFailed(); err != nil {
		e.w.Close()
		e.r.Close()
		return nil, fmt.Errorf("tracker: event database %s: %w", path, err)
	}
	go e.run()
	return e, nil
}

// record stores evs and returns once they are committed to disk.
func (e *events) record(ctx context.Context, evs ...event) error {
	b := &batch{events: evs, done: make(chan error, 1)}
	if err := e.send(ctx, b, true); err != nil {
		return err
	}
	select {
	case err := <-b.done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// recordCheck queues an update check without waiting for the commit.
// Checks count at most once per device, version and minute (their ts is
// the minute), so repeats within the minute are dropped here before they
// reach the database. When the queue is full the check is dropped too:
// checks are the one kind of event not acknowledged to anyone.
func (e *events) recordCheck(ev event) {
	key := ev.App + "\x00" + ev.Device + "\x00" + ev.Version
	e.checkMu.Lock()
	if ev.TS != e.checkMinute {
		clear(e.checks)
		e.checkMinute = ev.TS
	}
	_, seen := e.checks[key]
	if !seen && len(e.checks) < maxRecentChecks {
		e.checks[key] = struct{}{}
	}
	e.checkMu.Unlock()
	if seen {
		return
	}
	if err := e.send(context.Background(), &batch{events: []event{ev}}, false); err != nil && !errors.Is(err, errClosed) {
		e.log.Debug().Err(err).Msg("update check not recorded")
	}
}

func (e *events) send(ctx context.Context, b *batch, wait bool) error {
	e.mu.RLock()
	defer e.mu.RUnlock()
	if e.closed {
		return errClosed
	}
	if !wait {
		select {
		case e.queue <- b:
			return nil
		default:
			return errors.New("event queue full")
		}
	}
	select {
	case e.queue <- b:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// flush returns once every event queued before it is on disk.
func (e *events) flush(ctx context.Context) error { return e.record(ctx) }

// close flushes the queue, stops the writer and closes the database.
func (e *events) close() error {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return nil
	}
	e.closed = true
	close(e.queue)
	e.mu.Unlock()
	<-e.done
	err := e.ins.Close()
	if cerr := e.w.Close(); err == nil {
		err = cerr
	}
	if cerr := e.r.Close(); err == nil {
		err = cerr
	}
	return err
}

// checkDelay is how long update checks, which nobody waits for, may wait
// in the writer for other events to share their commit: with many devices
// a commit (and its fsync) per check or two would cost more than the
// checks' inserts. An event somebody waits for is committed at once.
const checkDelay = 50 * time.Millisecond

// run is the single writer: it takes every request waiting in the queue,
// commits their events in one transaction and then answers them all.
func (e *events) run() {
	defer close(e.done)
	timer := time.NewTimer(checkDelay)
	for b := range e.queue {
		batches, n, acked := []*batch{b}, len(b.events), b.done != nil
		timer.Reset(checkDelay)
		for n < maxBatchEvents {
			var wait <-chan time.Time
			if !acked {
				wait = timer.C
			}
			b, ok := e.next(wait)
			if !ok {
				break
			}
			batches, n, acked = append(batches, b), n+len(b.events), acked || b.done != nil
		}
		start := time.Now()
		err := e.commit(batches, n)
		if n > 0 {
			e.metrics.ObserveCommit(n, time.Since(start), err)
		}
		if err != nil {
			e.log.Error().Err(err).Int("events", n).Msg("event commit failed")
			err = &appError{Code: codeUnavailable, Message: "events cannot be stored right now; send them again later", Err: err}
		}
		for _, b := range batches {
			if b.done != nil {
				b.done <- err
			}
		}
	}
}

// next returns the next queued batch: at once if one is queued, else one
// that comes before wait fires (if wait is not nil). ok is false if none.
func (e *events) next(wait <-chan time.Time) (b *batch, ok bool) {
	select {
	case b, ok = <-e.queue:
		return b, ok
	default:
	}
	if wait == nil {
		return nil, false
	}
	select {
	case b, ok = <-e.queue:
		return b, ok
	case <-wait:
		return nil, false
	}
}

func (e *events) commit(batches []*batch, n int) error {
	if n == 0 {
		return nil
	}
	tx, err := e.w.Begin()
	if err != nil {
		return err
	}
	stmt := tx.Stmt(e.ins)
	received := e.now().UnixMilli()
	for _, b := range batches {
		for _, v := range b.events {
			if _, err := stmt.Exec(v.App, v.Device, v.Action, v.Version, v.TS, v.Number, v.OldVersion, v.Platform, v.PluginVersion, v.Source, received); err != nil {
				tx.Rollback()
				return err
			}
		}
	}
	if err := tx.Commit(); err != nil {
		return err
	}
	for _, b := range batches {
		for _, v := range b.events {
			if v.Action == actionUpdateFail {
				e.addFailed(v.App, v.Device, v.Version)
			}
		}
	}
	return nil
}

func failKey(app, device, version string) string { return app + "\x00" + device + "\x00" + version }

func (e *events) addFailed(app, device, version string) {
	e.failMu.Lock()
	defer e.failMu.Unlock()
	if len(e.failed) >= maxFailedInMemory {
		e.failOverflow = true
		return
	}
	e.failed[failKey(app, device, version)] = struct{}{}
}

func (e *events) loadFailed() error {
	rows, err := e.r.Query(`SELECT DISTINCT app, device, version FROM events WHERE action = 'update_fail'`)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var app, device, version string
		if err := rows.Scan(&app, &device, &version); err != nil {
			return err
		}
		e.addFailed(app, device, version)
	}
	return rows.Err()
}

// hasFailed reports whether device reported update_fail for version of app.
func (e *events) hasFailed(ctx context.Context, app, device, version string) (bool, error) {
	e.failMu.RLock()
	_, ok := e.failed[failKey(app, device, version)]
	overflow := e.failOverflow
	e.failMu.RUnlock()
	if ok || !overflow {
		return ok, nil
	}
	var one int
	err := e.r.QueryRowContext(ctx, `SELECT 1 FROM events WHERE action = 'update_fail' AND app = ? AND device = ? AND version = ? LIMIT 1`, app, device, version).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	return err == nil, err
}

// ping reports whether the database can be read: errClosed once closed.
func (e *events) ping(ctx context.Context) error {
	e.mu.RLock()
	defer e.mu.RUnlock()
	if e.closed {
		return errClosed
	}
	var n int64
	return e.r.QueryRowContext(ctx, `SELECT count(*) FROM floors`).Scan(&n)
}

func (e *events) isClosed() bool {
	e.mu.RLock()
	defer e.mu.RUnlock()
	return e.closed
}

// loadFloors returns the floors stored by raiseFloors, by name.
func (e *events) loadFloors() (map[string]int64, error) {
	rows, err := e.r.Query(`SELECT name, version FROM floors`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	floors := map[string]int64{}
	for rows.Next() {
		var name string
		var v int64
		if err := rows.Scan(&name, &v); err != nil {
			return nil, err
		}
		floors[name] = v
	}
	return floors, rows.Err()
}

// raiseFloors durably raises the stored floors to at least the given
// versions, in one transaction. It returns once they are on disk.
func (e *events) raiseFloors(ctx context.Context, floors map[string]int64) error {
	tx, err := e.w.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	for name, v := range floors {
		if _, err := tx.ExecContext(ctx, `INSERT INTO floors (name, version) VALUES (?, ?)
			ON CONFLICT (name) DO UPDATE SET version = max(version, excluded.version)`, name, v); err != nil {
			tx.Rollback()
			return err
		}
	}
	return tx.Commit()
}
