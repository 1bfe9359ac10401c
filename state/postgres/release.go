package postgres

import (
	"context"
	"math"

	"github.com/jackc/pgx/v5"

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
	err := d.pool.QueryRow(ctx, `SELECT coalesce(sum(n), 0)::bigint, coalesce(sum(LEAST(n, $3)), 0)::bigint,
		coalesce(sum(f * LEAST(n, $3)::float8 / n), 0)::float8
		FROM (SELECT count(*) AS n, count(b.device) AS f FROM marks c
			LEFT JOIN marks b ON b.app = c.app AND b.version = c.version AND b.device = c.device AND b.kind = 'broken'
			WHERE c.app = $1 AND c.version = $2 AND c.kind = 'cohort'
			GROUP BY CASE c.grp WHEN '' THEN 'device ' || c.device ELSE c.grp END) g`,
		app, version, perGroup).Scan(&c.Reported, &c.Devices, &c.Failed)
	return c, err
}

// SetChannel implements state.State.
func (d *DB) SetChannel(ctx context.Context, app, device, channel string) error {
	var err error
	if channel == "" {
		_, err = d.pool.Exec(ctx, `DELETE FROM device_channels WHERE app = $1 AND device = $2`, app, device)
	} else {
		_, err = d.pool.Exec(ctx, `INSERT INTO device_channels (app, device, channel) VALUES ($1, $2, $3)
			ON CONFLICT (app, device) DO UPDATE SET channel = excluded.channel`, app, device, channel)
	}
	return err
}

// Channels implements state.State.
func (d *DB) Channels(ctx context.Context, fn func(app, device, channel string)) error {
	rows, _ := d.pool.Query(ctx, `SELECT app, device, channel FROM device_channels`)
	var app, device, channel string
	_, err := pgx.ForEachRow(rows, []any{&app, &device, &channel}, func() error {
		fn(app, device, channel)
		return nil
	})
	return err
}
