// Package postgres is the tracker state in PostgreSQL, shared by several
// trackers: each commits its own batches, and unique keys with ON CONFLICT
// DO NOTHING make an event count once whichever tracker took it.
package postgres

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/cartona/deploy/state"
)

// DB is a state.State in a PostgreSQL database.
type DB struct {
	*state.Batcher
	pool *pgxpool.Pool
	now  func() time.Time

	failMu sync.RWMutex
	failed map[string]struct{} // failures seen; they are never removed

	queries chan *lookup
	quit    chan struct{} // closed by Close
	workers sync.WaitGroup
}

var _ state.State = (*DB)(nil)

// maxFailedCache bounds the remembered failures; past it, every lookup
// reads the database.
const maxFailedCache = 1 << 20

// Open connects to the database at url (postgres://user:password@host/db)
// and applies the migrations it lacks.
func Open(ctx context.Context, url string, opts state.Options) (*DB, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("PostgreSQL URL: %w", err)
	}
	if !strings.Contains(url, "pool_max_conns") {
		cfg.MaxConns = max(cfg.MaxConns, 16) // lookups of failures wait on few connections otherwise
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("PostgreSQL: %w", err)
	}
	if err := migrate(ctx, pool); err != nil {
		pool.Close()
		return nil, fmt.Errorf("PostgreSQL %s: %w", cfg.ConnConfig.Database, err)
	}
	d := &DB{pool: pool, now: opts.Clock(), failed: map[string]struct{}{}, queries: make(chan *lookup), quit: make(chan struct{})}
	d.Batcher = state.NewBatcher(d.commit, opts)
	for range lookupWorkers {
		d.workers.Go(d.lookups)
	}
	return d, nil
}

// Close implements state.State.
func (d *DB) Close() error {
	if d.Batcher.Close() {
		close(d.quit)
		d.workers.Wait()
		d.pool.Close()
	}
	return nil
}

// Ping implements state.State.
func (d *DB) Ping(ctx context.Context) error {
	if d.Closed() {
		return state.ErrClosed
	}
	return d.pool.Ping(ctx)
}

type eventKey struct {
	app, device, action, version string
	ts                           int64
}

func keyOf(e state.Event) eventKey { return eventKey{e.App, e.Device, e.Action, e.Version, e.TS} }

// commit stores a batch in one transaction, rows in key order so that
// trackers committing at once wait for each other instead of deadlocking.
func (d *DB) commit(evs []state.Event) error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	received := d.now()
	hour := state.HourOf(received)
	evs = slices.Clone(evs)
	slices.SortFunc(evs, func(a, b state.Event) int { return compareKeys(keyOf(a), keyOf(b)) })
	tx, err := d.pool.Begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback(ctx)
	stored, err := insertEvents(ctx, tx, evs, received.UnixMilli())
	if err != nil {
		return err
	}
	marks, err := insertMarks(ctx, tx, state.Marks(stored, hour))
	if err != nil {
		return err
	}
	if err := upsertHourly(ctx, tx, state.Deltas(stored, marks, hour)); err != nil {
		return err
	}
	if err := tx.Commit(ctx); err != nil {
		return err
	}
	for _, m := range marks {
		if m.Kind == state.MarkFailed {
			d.remember(m.App, m.Device, m.Version)
		}
	}
	return nil
}

func compareKeys(a, b eventKey) int {
	return cmp.Or(cmp.Compare(a.app, b.app), cmp.Compare(a.device, b.device), cmp.Compare(a.action, b.action),
		cmp.Compare(a.version, b.version), cmp.Compare(a.ts, b.ts))
}

// insertEvents inserts evs and returns those that were new.
func insertEvents(ctx context.Context, tx pgx.Tx, evs []state.Event, received int64) ([]state.Event, error) {
	cols := make([][]any, 10)
	for _, e := range evs {
		for i, v := range []any{e.App, e.Device, e.Action, e.Version, e.TS, e.Number, e.OldVersion, e.Platform, e.PluginVersion, e.Source} {
			cols[i] = append(cols[i], v)
		}
	}
	rows, err := tx.Query(ctx, `INSERT INTO events
		(app, device, action, version, ts, number, old_version, platform, plugin_version, source, received)
		SELECT *, $11::bigint FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::bigint[], $6::bigint[],
			$7::text[], $8::text[], $9::text[], $10::text[])
		ON CONFLICT DO NOTHING RETURNING app, device, action, version, ts`, append(args(cols), received)...)
	if err != nil {
		return nil, err
	}
	added := map[eventKey]bool{}
	var k eventKey
	if _, err := pgx.ForEachRow(rows, []any{&k.app, &k.device, &k.action, &k.version, &k.ts}, func() error {
		added[k] = true
		return nil
	}); err != nil {
		return nil, err
	}
	var stored []state.Event
	for _, e := range evs {
		if k := keyOf(e); added[k] {
			delete(added, k) // a duplicate in the batch was not stored twice
			stored = append(stored, e)
		}
	}
	return stored, nil
}

// insertMarks inserts marks and returns those that were new.
func insertMarks(ctx context.Context, tx pgx.Tx, marks []state.Mark) ([]state.Mark, error) {
	slices.SortFunc(marks, func(a, b state.Mark) int {
		return cmp.Or(cmp.Compare(a.App, b.App), cmp.Compare(a.Version, b.Version), cmp.Compare(a.Device, b.Device), cmp.Compare(a.Kind, b.Kind))
	})
	cols := make([][]any, 5)
	for _, m := range marks {
		for i, v := range []any{m.App, m.Version, m.Device, m.Kind, m.Hour} {
			cols[i] = append(cols[i], v)
		}
	}
	rows, err := tx.Query(ctx, `INSERT INTO marks (app, version, device, kind, hour)
		SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::bigint[])
		ON CONFLICT DO NOTHING RETURNING app, version, device, kind, hour`, args(cols)...)
	if err != nil {
		return nil, err
	}
	var m state.Mark
	var out []state.Mark
	_, err = pgx.ForEachRow(rows, []any{&m.App, &m.Version, &m.Device, &m.Kind, &m.Hour}, func() error {
		out = append(out, m)
		return nil
	})
	return out, err
}

func upsertHourly(ctx context.Context, tx pgx.Tx, deltas []state.Delta) error {
	slices.SortFunc(deltas, func(a, b state.Delta) int {
		return cmp.Or(cmp.Compare(a.App, b.App), cmp.Compare(a.Version, b.Version))
	})
	cols := make([][]any, 10)
	for _, c := range deltas {
		for i, v := range []any{c.App, c.Version, c.Hour, c.Number, c.Checks, c.DownloadsStarted, c.DownloadsCompleted,
			c.DownloadsFailed, c.UpdatesFailed, c.Devices} {
			cols[i] = append(cols[i], v)
		}
	}
	_, err := tx.Exec(ctx, `INSERT INTO hourly AS h (`+state.HourlyColumnsAt+`)
		SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[], $4::bigint[], $5::bigint[], $6::bigint[],
			$7::bigint[], $8::bigint[], $9::bigint[], $10::bigint[])
		ON CONFLICT (app, hour, version) DO UPDATE SET number = GREATEST(h.number, excluded.number),
		checks = h.checks + excluded.checks, downloads_started = h.downloads_started + excluded.downloads_started,
		downloads_completed = h.downloads_completed + excluded.downloads_completed,
		downloads_failed = h.downloads_failed + excluded.downloads_failed,
		updates_failed = h.updates_failed + excluded.updates_failed, devices = h.devices + excluded.devices`, args(cols)...)
	return err
}

func failKey(app, device, version string) string { return app + "\x00" + device + "\x00" + version }

func (d *DB) remember(app, device, version string) {
	d.failMu.Lock()
	defer d.failMu.Unlock()
	if len(d.failed) < maxFailedCache {
		d.failed[failKey(app, device, version)] = struct{}{}
	}
}

// Failed implements state.State: a failure seen once is remembered, and
// anything else is read from the database, where other trackers write.
// Concurrent lookups are answered by one query (see lookups).
func (d *DB) Failed(ctx context.Context, app, device, version string) (bool, error) {
	k := failKey(app, device, version)
	d.failMu.RLock()
	_, ok := d.failed[k]
	d.failMu.RUnlock()
	if ok {
		return true, nil
	}
	q := &lookup{app: app, device: device, version: version, done: make(chan error, 1)}
	select {
	case d.queries <- q:
	case <-d.quit:
		return false, state.ErrClosed
	case <-ctx.Done():
		return false, ctx.Err()
	}
	select {
	case err := <-q.done:
		return q.failed, err
	case <-ctx.Done():
		return false, ctx.Err()
	}
}

// args passes columns of values as array arguments (for unnest).
func args(cols [][]any) []any {
	out := make([]any, len(cols))
	for i, c := range cols {
		out[i] = c
	}
	return out
}
