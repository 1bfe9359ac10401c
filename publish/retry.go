package publish

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"time"

	"github.com/cartona/deploy/store"
)

// maxRetries bounds every retry loop of a publish.
const maxRetries = 100

// lostRace reports whether err is a conditional write that another writer
// won: a compare-and-swap whose ETag changed, or a create-only write on a
// key that exists.
func lostRace(err error) bool {
	return errors.Is(err, store.ErrConflict) || errors.Is(err, fs.ErrExist)
}

// retry calls attempt until it returns without losing a race (see
// lostRace), at most maxRetries times, waiting a little longer after each
// lost race. Every compare-and-swap and create-only loop of the package
// runs through it: attempt reads afresh, decides and writes once. what
// names the object in the error after the last attempt.
func retry[T any](ctx context.Context, what string, attempt func() (T, error)) (T, error) {
	var zero T
	for i := range maxRetries {
		v, err := attempt()
		if !lostRace(err) {
			return v, err
		}
		select {
		case <-ctx.Done():
			return zero, ctx.Err()
		case <-time.After(time.Duration(min(i, 20)) * 5 * time.Millisecond):
		}
	}
	return zero, fmt.Errorf("%s kept changing under %d attempts to update it; try again", what, maxRetries)
}
