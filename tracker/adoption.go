package tracker

import (
	"context"
	"time"
)

// installCount is how many devices installed a version of an app for the
// first time in the bucket starting at start.
type installCount struct {
	start   time.Time
	version string
	number  int64
	devices int64
}

// adoptionSQL finds each device's first install (download_complete from
// the seed's API or the plugin, or the plugin's set) of each version, by
// the time the tracker received it, then counts them per bucket.
const adoptionSQL = `SELECT version, MAX(n), first - first % ?, COUNT(*) FROM (
	SELECT version, MAX(number) AS n, MIN(received) AS first FROM events
	WHERE app = ? AND action IN ('download_complete', 'set')
	GROUP BY version, device)
	GROUP BY version, first - first % ?`

// adoption counts first installs per version of app in buckets of the given
// length, aligned on the Unix epoch.
func (e *events) adoption(ctx context.Context, app string, bucket time.Duration) ([]installCount, error) {
	ms := bucket.Milliseconds()
	rows, err := e.r.QueryContext(ctx, adoptionSQL, ms, app, ms)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []installCount
	for rows.Next() {
		var c installCount
		var start int64
		if err := rows.Scan(&c.version, &c.number, &start, &c.devices); err != nil {
			return nil, err
		}
		c.start = time.UnixMilli(start).UTC()
		out = append(out, c)
	}
	return out, rows.Err()
}
