package postgres

import (
	"context"
	"errors"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/cartona/deploy/state"
)

// Floors implements state.State.
func (d *DB) Floors(ctx context.Context) (map[string]int64, error) {
	rows, _ := d.pool.Query(ctx, `SELECT name, version FROM floors`)
	floors := map[string]int64{}
	var name string
	var v int64
	_, err := pgx.ForEachRow(rows, []any{&name, &v}, func() error {
		floors[name] = v
		return nil
	})
	return floors, err
}

// RaiseFloors implements state.State: GREATEST keeps the highest value
// any tracker stored; when no floor rises it only reads.
func (d *DB) RaiseFloors(ctx context.Context, floors map[string]int64) (map[string]int64, error) {
	cur, err := d.Floors(ctx)
	if err != nil {
		return nil, err
	}
	if out, ok := state.Covered(cur, floors); ok {
		return out, nil
	}
	names := make([]string, 0, len(floors))
	values := make([]int64, 0, len(floors))
	for name := range floors {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		values = append(values, floors[name])
	}
	rows, _ := d.pool.Query(ctx, `INSERT INTO floors AS f (name, version) SELECT * FROM unnest($1::text[], $2::bigint[])
		ON CONFLICT (name) DO UPDATE SET version = GREATEST(f.version, excluded.version) RETURNING name, version`, names, values)
	out := make(map[string]int64, len(floors))
	var name string
	var v int64
	_, err = pgx.ForEachRow(rows, []any{&name, &v}, func() error {
		out[name] = v
		return nil
	})
	return out, err
}

// Stats implements state.State from the hourly counts.
func (d *DB) Stats(ctx context.Context, app string) ([]state.BuildCounts, error) {
	rows, _ := d.pool.Query(ctx, `SELECT `+state.StatsSums+` FROM hourly WHERE app = $1 OR $1 = '' GROUP BY app, version`, app)
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (state.BuildCounts, error) { return state.ScanCounts(r) })
}

// Hourly implements state.State.
func (d *DB) Hourly(ctx context.Context, app string, from, to time.Time) ([]state.HourCounts, error) {
	rows, _ := d.pool.Query(ctx, `SELECT `+state.HourlyColumns+`, installs, hour FROM hourly WHERE app = $1 AND hour >= $2 AND hour < $3`,
		app, from.UnixMilli(), to.UnixMilli())
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (state.HourCounts, error) { return state.ScanHour(r) })
}

// Prune implements state.State.
func (d *DB) Prune(ctx context.Context, before time.Time) (int64, error) {
	tag, err := d.pool.Exec(ctx, `DELETE FROM events WHERE received < $1`, before.UnixMilli())
	return tag.RowsAffected(), err
}

// Halt implements state.State in one statement: the row inserted, or the
// one another tracker stored first.
func (d *DB) Halt(ctx context.Context, h state.Halt) (state.Halt, bool, error) {
	stored := state.Halt{App: h.App, Channel: h.Channel, Rollout: h.Rollout}
	var at int64
	var first bool
	err := d.pool.QueryRow(ctx, `WITH ins AS (
		INSERT INTO halts (app, channel, rollout, reason, at) VALUES ($1, $2, $3, $4, $5)
		ON CONFLICT DO NOTHING RETURNING reason, at)
	SELECT reason, at, true FROM ins
	UNION ALL SELECT reason, at, false FROM halts WHERE app = $1 AND channel = $2 AND rollout = $3 AND NOT EXISTS (SELECT 1 FROM ins)`,
		h.App, h.Channel, h.Rollout, h.Reason, h.At.UnixMilli()).Scan(&stored.Reason, &at, &first)
	if errors.Is(err, pgx.ErrNoRows) {
		// Another tracker's insert committed after this statement's
		// snapshot: the next statement sees it.
		err = d.pool.QueryRow(ctx, `SELECT reason, at FROM halts WHERE app = $1 AND channel = $2 AND rollout = $3`,
			h.App, h.Channel, h.Rollout).Scan(&stored.Reason, &at)
	}
	stored.At = time.UnixMilli(at).UTC()
	return stored, first, err
}

// Halts implements state.State.
func (d *DB) Halts(ctx context.Context, app string) ([]state.Halt, error) {
	rows, _ := d.pool.Query(ctx, `SELECT app, channel, rollout, reason, at FROM halts WHERE app = $1 ORDER BY at, channel, rollout`, app)
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (state.Halt, error) {
		var h state.Halt
		var at int64
		err := r.Scan(&h.App, &h.Channel, &h.Rollout, &h.Reason, &at)
		h.At = time.UnixMilli(at).UTC()
		return h, err
	})
}
