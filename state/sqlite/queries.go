package sqlite

import (
	"context"
	"database/sql"
	"time"

	"github.com/cartona/deploy/state"
)

// Floors implements state.State.
func (d *DB) Floors(ctx context.Context) (map[string]int64, error) {
	rows, err := d.r.QueryContext(ctx, `SELECT name, version FROM floors`)
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

// RaiseFloors implements state.State in one transaction; when no floor
// rises it only reads.
func (d *DB) RaiseFloors(ctx context.Context, floors map[string]int64) (map[string]int64, error) {
	cur, err := d.Floors(ctx)
	if err != nil {
		return nil, err
	}
	if out, ok := state.Covered(cur, floors); ok {
		return out, nil
	}
	tx, err := d.w.BeginTx(ctx, nil)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	out := make(map[string]int64, len(floors))
	for name, v := range floors {
		err := tx.QueryRowContext(ctx, `INSERT INTO floors (name, version) VALUES (?, ?)
			ON CONFLICT (name) DO UPDATE SET version = max(version, excluded.version) RETURNING version`, name, v).Scan(&v)
		if err != nil {
			return nil, err
		}
		out[name] = v
	}
	return out, tx.Commit()
}

// Stats implements state.State from the hourly counts.
func (d *DB) Stats(ctx context.Context, app string) ([]state.BuildCounts, error) {
	rows, err := d.r.QueryContext(ctx, `SELECT `+state.StatsSums+` FROM hourly WHERE app = ? OR ? = '' GROUP BY app, version`, app, app)
	if err != nil {
		return nil, err
	}
	return collect(rows, func(r *sql.Rows) (state.BuildCounts, error) { return state.ScanCounts(r) })
}

// Hourly implements state.State.
func (d *DB) Hourly(ctx context.Context, app string, from, to time.Time) ([]state.HourCounts, error) {
	rows, err := d.r.QueryContext(ctx, `SELECT `+state.HourlyColumns+`, installs, hour FROM hourly WHERE app = ? AND hour >= ? AND hour < ?`,
		app, from.UnixMilli(), to.UnixMilli())
	if err != nil {
		return nil, err
	}
	return collect(rows, func(r *sql.Rows) (state.HourCounts, error) { return state.ScanHour(r) })
}

// Prune implements state.State.
func (d *DB) Prune(ctx context.Context, before time.Time) (int64, error) {
	res, err := d.w.ExecContext(ctx, `DELETE FROM events WHERE received < ?`, before.UnixMilli())
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

// Halt implements state.State.
func (d *DB) Halt(ctx context.Context, h state.Halt) (state.Halt, bool, error) {
	res, err := d.w.ExecContext(ctx, `INSERT OR IGNORE INTO halts (app, channel, rollout, reason, at) VALUES (?, ?, ?, ?, ?)`,
		h.App, h.Channel, h.Rollout, h.Reason, h.At.UnixMilli())
	if err != nil {
		return state.Halt{}, false, err
	}
	n, err := res.RowsAffected()
	if err != nil {
		return state.Halt{}, false, err
	}
	var at int64
	stored := state.Halt{App: h.App, Channel: h.Channel, Rollout: h.Rollout}
	err = d.w.QueryRowContext(ctx, `SELECT reason, at FROM halts WHERE app = ? AND channel = ? AND rollout = ?`,
		h.App, h.Channel, h.Rollout).Scan(&stored.Reason, &at)
	stored.At = time.UnixMilli(at).UTC()
	return stored, n == 1, err
}

// Halts implements state.State.
func (d *DB) Halts(ctx context.Context, app string) ([]state.Halt, error) {
	rows, err := d.r.QueryContext(ctx, `SELECT app, channel, rollout, reason, at FROM halts WHERE app = ? ORDER BY at, channel, rollout`, app)
	if err != nil {
		return nil, err
	}
	return collect(rows, func(r *sql.Rows) (state.Halt, error) {
		var h state.Halt
		var at int64
		err := r.Scan(&h.App, &h.Channel, &h.Rollout, &h.Reason, &at)
		h.At = time.UnixMilli(at).UTC()
		return h, err
	})
}

// Ping implements state.State.
func (d *DB) Ping(ctx context.Context) error {
	if d.Closed() {
		return state.ErrClosed
	}
	var n int64
	return d.r.QueryRowContext(ctx, `SELECT count(*) FROM floors`).Scan(&n)
}

// collect scans every row and closes rows.
func collect[T any](rows *sql.Rows, scan func(*sql.Rows) (T, error)) ([]T, error) {
	defer rows.Close()
	out := []T{}
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}
