package sqlite

import (
	"context"
	"database/sql"
	"math"

	"github.com/cartona/deploy/state"
)

// Health implements state.State from the cohort and broken marks: devices
// and failures per group (a cohort mark without one is a group of its
// own), then the groups weighed.
func (d *DB) Health(ctx context.Context, app, version string, perGroup int64) (state.RolloutCounts, error) {
	if perGroup <= 0 {
		perGroup = math.MaxInt64
	}
	var c state.RolloutCounts
	err := d.r.QueryRowContext(ctx, `SELECT COALESCE(SUM(n), 0), COALESCE(SUM(MIN(n, ?3)), 0), COALESCE(SUM(f * MIN(n, ?3) * 1.0 / n), 0)
		FROM (SELECT COUNT(*) AS n, COUNT(b.device) AS f FROM marks c
			LEFT JOIN marks b ON b.app = c.app AND b.version = c.version AND b.device = c.device AND b.kind = 'broken'
			WHERE c.app = ?1 AND c.version = ?2 AND c.kind = 'cohort'
			GROUP BY CASE c.grp WHEN '' THEN 'device ' || c.device ELSE c.grp END)`,
		app, version, perGroup).Scan(&c.Reported, &c.Devices, &c.Failed)
	return c, err
}

// SetChannel implements state.State.
func (d *DB) SetChannel(ctx context.Context, app, device, channel string) error {
	var err error
	if channel == "" {
		_, err = d.w.ExecContext(ctx, `DELETE FROM device_channels WHERE app = ? AND device = ?`, app, device)
	} else {
		_, err = d.w.ExecContext(ctx, `INSERT INTO device_channels (app, device, channel) VALUES (?, ?, ?)
			ON CONFLICT (app, device) DO UPDATE SET channel = excluded.channel`, app, device, channel)
	}
	return err
}

// Channels implements state.State.
func (d *DB) Channels(ctx context.Context, fn func(app, device, channel string)) error {
	rows, err := d.r.QueryContext(ctx, `SELECT app, device, channel FROM device_channels`)
	if err != nil {
		return err
	}
	return each(rows, func(r *sql.Rows) error {
		var app, device, channel string
		err := r.Scan(&app, &device, &channel)
		if err == nil {
			fn(app, device, channel)
		}
		return err
	})
}

// each calls scan for every row and closes rows.
func each(rows *sql.Rows, scan func(*sql.Rows) error) error {
	defer rows.Close()
	for rows.Next() {
		if err := scan(rows); err != nil {
			return err
		}
	}
	return rows.Err()
}
