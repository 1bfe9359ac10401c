package sqlite

import (
	"context"
	"database/sql"
)

// Health implements state.State from the marks.
func (d *DB) Health(ctx context.Context, app, version string) (devices, failed int64, err error) {
	err = d.r.QueryRowContext(ctx, `SELECT COALESCE(SUM(kind = 'seen'), 0), COALESCE(SUM(kind = 'broken'), 0)
		FROM marks WHERE app = ? AND version = ?`, app, version).Scan(&devices, &failed)
	return devices, failed, err
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
