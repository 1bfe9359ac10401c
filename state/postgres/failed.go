package postgres

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/cartona/deploy/state"
)

// Each tracker keeps every failed mark in memory, as the SQLite state
// does, so that an update check asks PostgreSQL nothing. A trigger
// announces each new failure on the deploy_failed channel; a tracker
// listens on its own connection, reads all failures once it listens (so
// none is missed), and adds each announced one. Its own failures are added
// when their batch commits, before the events are acknowledged.
//
// The memory answers a lookup alone only while it is known to be current:
// the tracker announces a ping of its own every pingEvery and the memory
// counts as current while the last one came back less than staleAfter
// ago. Otherwise (not listening yet, the connection lost, or more failures
// than state.MaxFailed) a lookup reads the database, as lookups does.
var (
	pingEvery  = 5 * time.Second
	staleAfter = 3 * pingEvery
)

const (
	failedChannel = "deploy_failed"
	listenerName  = "deploy tracker: failures" // in pg_stat_activity
)

// failures is the memory of failed marks, and whether it is current.
type failures struct {
	*state.FailedSet
	ping     string       // this tracker's ping payload
	lastPing atomic.Int64 // monotonic nanoseconds since start of the last ping heard, 0 if not listening
	start    time.Time
}

func newFailures() *failures {
	id := make([]byte, 8)
	rand.Read(id)
	return &failures{FailedSet: state.NewFailedSet(), ping: "ping " + hex.EncodeToString(id), start: time.Now()}
}

// lookup reports whether the failure is known, and whether a miss is an
// answer (the memory is complete and current).
func (f *failures) lookup(app, device, version string) (failed, sure bool) {
	failed, complete := f.Has(app, device, version)
	heard := f.lastPing.Load()
	return failed, failed || complete && heard != 0 && time.Since(f.start)-time.Duration(heard) < staleAfter
}

func (f *failures) heard() { f.lastPing.Store(int64(max(time.Since(f.start), 1))) }
func (f *failures) lost()  { f.lastPing.Store(0) }

// follow keeps the memory current until Close: it listens, reads every
// failure, and adds each announced one, starting again after a lost
// connection.
func (d *DB) follow() {
	ctx, cancel := context.WithCancel(context.Background())
	go func() { <-d.quit; cancel() }()
	for wait := time.Second; ; wait = min(2*wait, 30*time.Second) {
		err := d.listen(ctx)
		d.fails.lost()
		if ctx.Err() != nil {
			return
		}
		d.log.Warn().Err(err).Msg("PostgreSQL: not following the failures of other trackers; each update check asks the database until this is back")
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
	}
}

// listen follows the failures on one connection until it fails.
func (d *DB) listen(ctx context.Context) error {
	pc, err := d.pool.Acquire(ctx)
	if err != nil {
		return err
	}
	conn := pc.Hijack()
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, "SET application_name = '"+listenerName+"'; LISTEN "+failedChannel); err != nil {
		return err
	}
	if err := d.loadFailures(ctx, conn); err != nil {
		return err
	}
	d.fails.heard()
	pctx, stop := context.WithCancel(ctx)
	defer stop()
	go d.pingUntil(pctx)
	for {
		wctx, cancel := context.WithTimeout(ctx, staleAfter)
		n, err := conn.WaitForNotification(wctx)
		cancel()
		if err != nil {
			return fmt.Errorf("waiting for announced failures: %w", err)
		}
		switch {
		case n.Payload == d.fails.ping:
			d.fails.heard()
		case len(n.Payload) > 5 && n.Payload[:5] == "ping ":
			// another tracker's
		default:
			var m [3]string
			if json.Unmarshal([]byte(n.Payload), &m) != nil { // too long to announce
				if err := d.loadFailures(ctx, conn); err != nil {
					return err
				}
				continue
			}
			d.fails.Add(m[0], m[2], m[1])
		}
	}
}

// pingUntil announces this tracker's ping every pingEvery until ctx ends.
func (d *DB) pingUntil(ctx context.Context) {
	t := time.NewTicker(pingEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			d.pool.Exec(ctx, `SELECT pg_notify($1, $2)`, failedChannel, d.fails.ping)
		}
	}
}

// loadFailures adds every failed mark in the database.
func (d *DB) loadFailures(ctx context.Context, conn *pgx.Conn) error {
	rows, _ := conn.Query(ctx, `SELECT app, version, device FROM marks WHERE kind = 'failed'`)
	var app, version, device string
	_, err := pgx.ForEachRow(rows, []any{&app, &version, &device}, func() error {
		d.fails.Add(app, device, version)
		return nil
	})
	return err
}
