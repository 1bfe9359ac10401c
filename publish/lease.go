package publish

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"slices"
	"time"

	"github.com/cartona/deploy/manifest"
	"github.com/cartona/deploy/store"
)

// How an upload and a prune of the same app stay out of each other's way.
// Each first writes what it is about to do, then reads what the other
// wrote (the store is strongly consistent), so at least one of them sees
// the other:
//
//   - an upload writes a lease (apps/<app>/uploads/<id>.json) naming the
//     objects it is about to reference, then reads the prune's doomed list
//     (apps/<app>/prune.json); if the list names one of its objects, it
//     waits until the prune is done (or pruneWindow has passed, when a
//     prune has stopped deleting), and only then looks in the store;
//   - a prune writes its doomed list, then reads the leases, and spares
//     every object a live lease names.
//
// So an object is deleted only if no upload that relies on it had written
// its lease before the prune read the leases, and every upload that wrote
// its lease later looks for its objects only after the deletes.
const (
	// leaseTTL is how long a lease counts. An upload renews its lease at
	// each step and fails if a step took more than half of it.
	leaseTTL = 2 * time.Hour
	// pruneWindow is how long after writing its doomed list a prune may
	// still delete; it stops deleting then, and uploads stop waiting
	// for it pruneWindow after they first saw the list.
	pruneWindow = 10 * time.Minute
	// maxCoordSize bounds a lease or doomed list read from the store.
	maxCoordSize = 64 << 20
)

// pollInterval is how often a waiting upload reads the doomed list again.
var pollInterval = 100 * time.Millisecond

func leasesPrefix(app string) string { return "apps/" + app + "/uploads/" }
func pruneKey(app string) string     { return "apps/" + app + "/prune.json" }

// coord is the content of a lease or a doomed list.
type coord struct {
	Started time.Time `json:"started"`
	Keys    []string  `json:"keys"`
}

// lease is an upload's claim on the objects it is about to reference.
type lease struct {
	p       *Publisher
	key     string
	keys    []string
	renewed time.Time // monotonic: when the lease was last written
}

func (p *Publisher) newLease(app string) *lease {
	id := make([]byte, 16)
	rand.Read(id)
	return &lease{p: p, key: leasesPrefix(app) + hex.EncodeToString(id) + ".json"}
}

// add writes the lease with keys added, then waits until no prune is
// about to delete one of them. After it returns, whatever the store holds
// of those keys stays until the lease is released or expires.
func (l *lease) add(ctx context.Context, app string, keys ...string) error {
	if !l.renewed.IsZero() && time.Since(l.renewed) > leaseTTL/2 {
		return fmt.Errorf("the upload took over %s between two steps, so a prune may have removed what it relied on; upload again", leaseTTL/2)
	}
	l.keys = append(l.keys, keys...)
	data, err := json.Marshal(coord{Started: l.p.now(), Keys: l.keys})
	if err != nil {
		return err
	}
	// Transient: a lease matters only while its upload runs, which a crash
	// of the machine ends too.
	if _, err := l.p.Store.Put(ctx, l.key, bytes.NewReader(data), store.PutOptions{Size: int64(len(data)), ContentType: "application/json", Transient: true}); err != nil {
		return err
	}
	l.renewed = time.Now()
	return l.p.waitPrune(ctx, app, keys)
}

// release removes the lease; the build record and pointer written since
// keep its objects from then on.
func (l *lease) release(ctx context.Context) {
	if !l.renewed.IsZero() {
		l.p.Store.Delete(context.WithoutCancel(ctx), l.key)
	}
}

// waitPrune returns once app has no prune about to delete one of keys.
func (p *Publisher) waitPrune(ctx context.Context, app string, keys []string) error {
	var until time.Time
	for {
		doomed, err := readCoord(ctx, p.Store, pruneKey(app))
		if errors.Is(err, fs.ErrNotExist) || err == nil && !overlaps(doomed.Keys, keys) {
			return nil
		}
		if err != nil && !errors.Is(err, errBadCoord) {
			return err
		}
		// A doomed list that names our objects, or one we cannot read.
		if until.IsZero() {
			until = time.Now().Add(pruneWindow)
			if p.Waiting != nil {
				started := "at an unknown time"
				if doomed != nil {
					started = "at " + doomed.Started.Local().Format(time.DateTime)
				}
				p.Waiting(fmt.Sprintf("waiting for the prune of %s that started %s (%s) to finish deleting objects this command needs; "+
					"if that prune died, this goes on at %s", app, started, p.Store.Location(pruneKey(app)), until.Local().Format(time.TimeOnly)))
			}
		}
		if time.Now().After(until) {
			return nil // that prune has stopped deleting
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(pollInterval):
		}
	}
}

var errBadCoord = errors.New("unreadable")

// readCoord reads a lease or a doomed list.
func readCoord(ctx context.Context, s store.Store, key string) (*coord, error) {
	data, _, err := store.ReadSmall(ctx, s, key, maxCoordSize)
	if err != nil {
		return nil, err
	}
	var c coord
	if err := json.Unmarshal(data, &c); err != nil {
		return nil, fmt.Errorf("%s: %w", s.Location(key), errBadCoord)
	}
	return &c, nil
}

func overlaps(a, b []string) bool {
	set := make(map[string]bool, len(a))
	for _, k := range a {
		set[k] = true
	}
	for _, k := range b {
		if set[k] {
			return true
		}
	}
	return false
}

// holdBuild leases everything of an existing build (its record, bundle,
// file manifest and files) for an edit that points a channel at it, such
// as a promote or a rollback, and checks that a prune has not removed it.
// The caller releases the lease once the channel's pointer is written.
func (p *Publisher) holdBuild(ctx context.Context, app string, ref manifest.BuildRef) (*lease, error) {
	m := &marks{keys: map[string]bool{}}
	if err := p.markRef(ctx, app, ref, m); err != nil {
		return nil, err
	}
	l := p.newLease(app)
	if err := l.add(ctx, app, slices.Sorted(maps.Keys(m.keys))...); err != nil {
		l.release(ctx)
		return nil, err
	}
	for _, key := range []string{manifest.BuildKey(app, ref.Number), ref.Bundle} {
		if _, err := p.Store.Stat(ctx, key); err != nil {
			l.release(ctx)
			if errors.Is(err, fs.ErrNotExist) {
				return nil, fmt.Errorf("build %d of %s was pruned (%s is gone); upload it again", ref.Number, app, key)
			}
			return nil, err
		}
	}
	return l, nil
}
