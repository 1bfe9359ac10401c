// Package postgres is the tracker state in PostgreSQL, shared by several
// trackers: each commits its own batches, and unique keys with ON CONFLICT
// DO NOTHING make an event count once whichever tracker took it.
package postgres

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/rs/zerolog"

	"github.com/cartona/deploy/state"
)

// DB is a state.State in a PostgreSQL database.
type DB struct {
	*state.Batcher
	pool *pgxpool.Pool
	now  func() time.Time

	log   zerolog.Logger
	fails *failures   // see failed.go
	seen  *state.Seen // seen marks stored, not inserted again
	// retryLimit is state.Options.Retries.
	retryLimit int

	queries chan *lookup
	quit    chan struct{} // closed by Close
	workers sync.WaitGroup
}

var _ state.State = (*DB)(nil)

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
		var pe *pgconn.PgError
		switch {
		case errors.As(err, &pe) && (strings.HasPrefix(pe.Code, "28") || pe.Code == "42501"): // invalid authorization, insufficient privilege
			return nil, fmt.Errorf("PostgreSQL %s: %w (%s)", cfg.ConnConfig.Database, state.ErrRefused, pe.Message)
		case errors.As(err, &pe) && pe.Code == "3D000": // invalid catalog name
			return nil, fmt.Errorf("PostgreSQL: %w: %s; create it (createdb %s) or fix the database name in db=", state.ErrNoDatabase, pe.Message, cfg.ConnConfig.Database)
		}
		return nil, fmt.Errorf("PostgreSQL %s: %w", cfg.ConnConfig.Database, err)
	}
	if _, err := blockRetried(ctx, pool, nil, opts.Retries()); err != nil { // events stored before, or under a higher limit
		pool.Close()
		return nil, fmt.Errorf("PostgreSQL %s: %w", cfg.ConnConfig.Database, err)
	}
	d := &DB{pool: pool, now: opts.Clock(), log: opts.Log, fails: newFailures(), seen: state.NewSeen(), retryLimit: opts.Retries(), queries: make(chan *lookup), quit: make(chan struct{})}
	d.Batcher = state.NewBatcher(d.commit, opts)
	for range lookupWorkers {
		d.workers.Go(d.lookups)
	}
	d.workers.Go(d.follow)
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

// commitSQL stores a batch in one statement, so in one round trip and one
// transaction: the events but checks ($1-$10), the marks of all of them
// ($11-$14 and $22, the group; a mark already there is skipped) and, in hourly, the counts of
// the checks ($19-$21: app, version, number), of the events and of the
// marks that were new. $15 is the receipt time, $16 its hour, and $17, $18
// map the batch's actions to what they count (state.CountOf). Rows go in
// key order, so that trackers committing at once wait for each other
// instead of deadlocking.
const commitSQL = `WITH ev AS (
	INSERT INTO events (app, device, action, version, ts, number, old_version, platform, plugin_version, source, received)
	SELECT *, $15::bigint FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::bigint[], $6::bigint[],
		$7::text[], $8::text[], $9::text[], $10::text[])
	ON CONFLICT DO NOTHING RETURNING app, version, action, number
), mk AS (
	INSERT INTO marks (app, version, device, kind, grp, hour)
	SELECT *, $16::bigint FROM unnest($11::text[], $12::text[], $13::text[], $14::text[], $22::text[])
	ON CONFLICT DO NOTHING RETURNING app, version, kind
)
INSERT INTO hourly AS h (` + state.HourlyColumnsAt + `)
SELECT app, version, $16::bigint, max(number), sum(checks), sum(started), sum(completed), sum(dfailed), sum(ufailed),
	sum(devices), sum(installs)
FROM (
	SELECT ev.app, ev.version, ev.number, (c.count = 1)::int AS checks, (c.count = 2)::int AS started, 0 AS completed,
		(c.count = 3)::int AS dfailed, (c.count = 4)::int AS ufailed, 0 AS devices, 0 AS installs
	FROM ev JOIN unnest($17::text[], $18::int[]) AS c (action, count) USING (action)
	UNION ALL
	SELECT app, version, number, 1, 0, 0, 0, 0, 0, 0 FROM unnest($19::text[], $20::text[], $21::bigint[]) AS k (app, version, number)
	UNION ALL
	SELECT app, version, 0, 0, 0, (kind = 'completed')::int, 0, 0, (kind = 'seen')::int, (kind = 'installed')::int FROM mk
) x GROUP BY app, version ORDER BY app, version
ON CONFLICT (app, hour, version) DO UPDATE SET number = GREATEST(h.number, excluded.number),
	checks = h.checks + excluded.checks, downloads_started = h.downloads_started + excluded.downloads_started,
	downloads_completed = h.downloads_completed + excluded.downloads_completed,
	downloads_failed = h.downloads_failed + excluded.downloads_failed,
	updates_failed = h.updates_failed + excluded.updates_failed, devices = h.devices + excluded.devices,
	installs = h.installs + excluded.installs`

// commit stores a batch with commitSQL.
func (d *DB) commit(evs []state.Event) error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	received := d.now()
	hour := state.HourOf(received)
	evs = slices.Clone(evs)
	slices.SortFunc(evs, func(a, b state.Event) int {
		return cmp.Or(cmp.Compare(a.App, b.App), cmp.Compare(a.Device, b.Device), cmp.Compare(a.Action, b.Action),
			cmp.Compare(a.Version, b.Version), cmp.Compare(a.TS, b.TS))
	})
	marks := d.seen.Unstored(state.Marks(evs, hour))
	slices.SortFunc(marks, func(a, b state.Mark) int {
		return cmp.Or(cmp.Compare(a.App, b.App), cmp.Compare(a.Version, b.Version), cmp.Compare(a.Device, b.Device), cmp.Compare(a.Kind, b.Kind))
	})
	cols := make([][]any, 22)
	counts := map[string]bool{}
	for _, e := range evs {
		if e.Action == state.ActionCheck { // counted and marked, not kept (see state.State.RecordCheck)
			cols[18], cols[19], cols[20] = append(cols[18], e.App), append(cols[19], e.Version), append(cols[20], e.Number)
			continue
		}
		for i, v := range []any{e.App, e.Device, e.Action, e.Version, e.TS, e.Number, e.OldVersion, e.Platform, e.PluginVersion, e.Source} {
			cols[i] = append(cols[i], v)
		}
		if !counts[e.Action] {
			counts[e.Action] = true
			cols[16], cols[17] = append(cols[16], e.Action), append(cols[17], state.CountOf(e.Action))
		}
	}
	for _, m := range marks {
		for i, v := range []any{m.App, m.Version, m.Device, m.Kind} {
			cols[10+i] = append(cols[10+i], v)
		}
		cols[21] = append(cols[21], m.Group)
	}
	a := args(cols)
	a[14], a[15] = received.UnixMilli(), hour
	retried := state.Retried(evs, hour)
	var blocked []state.Mark
	if len(retried) == 0 {
		if _, err := d.pool.Exec(ctx, commitSQL, a...); err != nil {
			return err
		}
	} else if err := pgx.BeginFunc(ctx, d.pool, func(tx pgx.Tx) (err error) {
		if _, err := tx.Exec(ctx, commitSQL, a...); err != nil {
			return err
		}
		blocked, err = blockRetried(ctx, tx, retried, d.retryLimit)
		return err
	}); err != nil {
		return err
	}
	d.seen.Stored(marks)
	d.fails.AddMarks(marks, blocked)
	return nil
}

// blockSQL marks failed the builds that devices retried $4 times or more,
// among those named by $1-$3 (app, version, device; all of them if $1 is
// null), as of hour $5, and returns the marks it added.
var blockSQL = `INSERT INTO marks (app, version, device, kind, hour)
SELECT e.app, e.version, e.device, 'failed', $5::bigint FROM events e
WHERE ` + state.RetrySQL + ` AND ($1::text[] IS NULL OR (e.app, e.version, e.device) IN
	(SELECT * FROM unnest($1::text[], $2::text[], $3::text[])))
GROUP BY e.app, e.version, e.device HAVING count(*) >= $4
ORDER BY 1, 2, 3
ON CONFLICT DO NOTHING RETURNING app, version, device`

// blockRetried runs blockSQL for marks (all devices if nil).
func blockRetried(ctx context.Context, q interface {
	Query(context.Context, string, ...any) (pgx.Rows, error)
}, marks []state.Mark, limit int) ([]state.Mark, error) {
	var cols [3][]string
	hour := int64(0)
	for _, m := range marks {
		cols[0], cols[1], cols[2], hour = append(cols[0], m.App), append(cols[1], m.Version), append(cols[2], m.Device), m.Hour
	}
	if marks == nil {
		hour = state.HourOf(time.Now())
	}
	rows, _ := q.Query(ctx, blockSQL, cols[0], cols[1], cols[2], limit, hour)
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (state.Mark, error) {
		m := state.Mark{Kind: state.MarkFailed, Hour: hour}
		return m, r.Scan(&m.App, &m.Version, &m.Device)
	})
}

// Failed implements state.State: from memory while it is current (see
// failed.go), else from the database, where other trackers write.
// Concurrent reads are answered by one query (see lookups).
func (d *DB) Failed(ctx context.Context, app, device, version string) (bool, error) {
	if failed, sure := d.fails.lookup(app, device, version); sure {
		return failed, nil
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
