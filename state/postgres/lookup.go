package postgres

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"
)

// Failure lookups that arrive while a query runs are answered together by
// the next one, so that PostgreSQL sees one query per round trip rather
// than one per update check.
const (
	lookupWorkers = 2
	maxLookups    = 512
)

type lookup struct {
	app, device, version string
	failed               bool
	done                 chan error
}

// lookups answers the queued lookups until Close.
func (d *DB) lookups() {
	for {
		var batch []*lookup
		select {
		case q := <-d.queries:
			batch = append(batch, q)
		case <-d.quit:
			return
		}
	drain:
		for len(batch) < maxLookups {
			select {
			case q := <-d.queries:
				batch = append(batch, q)
			default:
				break drain
			}
		}
		err := d.lookup(batch)
		for _, q := range batch {
			q.done <- err
		}
	}
}

// lookup sets failed on each of batch in one query.
func (d *DB) lookup(batch []*lookup) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cols := make([][]any, 3)
	for _, q := range batch {
		cols[0], cols[1], cols[2] = append(cols[0], q.app), append(cols[1], q.version), append(cols[2], q.device)
	}
	rows, _ := d.pool.Query(ctx, `SELECT m.app, m.version, m.device FROM marks m
		JOIN unnest($1::text[], $2::text[], $3::text[]) AS q (app, version, device)
		ON m.app = q.app AND m.version = q.version AND m.device = q.device AND m.kind = 'failed'`, args(cols)...)
	found := map[[3]string]bool{}
	var app, version, device string
	if _, err := pgx.ForEachRow(rows, []any{&app, &version, &device}, func() error {
		found[[3]string{app, device, version}] = true
		return nil
	}); err != nil {
		return err
	}
	for _, q := range batch {
		if q.failed = found[[3]string{q.app, q.device, q.version}]; q.failed {
			d.fails.Add(q.app, q.device, q.version)
		}
	}
	return nil
}
