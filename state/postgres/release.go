package postgres

import (
	"context"

	"github.com/jackc/pgx/v5"
)

// Health implements state.State from the marks.
func (d *DB) Health(ctx context.Context, app, version string) (devices, failed int64, err error) {
	err = d.pool.QueryRow(ctx, `SELECT count(*) FILTER (WHERE kind = 'seen'), count(*) FILTER (WHERE kind = 'broken')
		FROM marks WHERE app = $1 AND version = $2`, app, version).Scan(&devices, &failed)
	return devices, failed, err
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
