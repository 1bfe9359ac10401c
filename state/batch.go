package state

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/cartona/deploy/internal/throttle"
)

// Group commit limits: a commit holds at most MaxBatch events, and the
// queue QueueLen waiting requests.
const (
	MaxBatch = 4096
	QueueLen = 4096
)

// maxRecentChecks bounds the set of checks recorded in the current minute.
const maxRecentChecks = 1 << 18

// Batcher is the group commit that backends share: one goroutine takes
// every request waiting in the queue, commits their events in one call of
// commit and then answers them all; while only update checks are waiting
// it waits up to CheckDelay for more events to share the commit. Its
// methods are those of State.
type Batcher struct {
	commit   func([]Event) error
	log      zerolog.Logger
	onCommit func(events int, took time.Duration, err error)
	now      func() time.Time
	failing  throttle.Failures

	mu     sync.RWMutex // held shared by senders, exclusively by Close
	closed bool
	queue  chan *request
	done   chan struct{}

	checkMu     sync.Mutex
	checkMinute int64
	checks      map[checkKey]struct{} // checks recorded in checkMinute
}

type checkKey struct{ app, device, version string }

type request struct {
	events []Event
	done   chan error // nil: nobody waits
}

// NewBatcher starts the writer goroutine. commit stores a batch of events
// atomically; it is called from one goroutine at a time and must not keep
// the slice.
func NewBatcher(commit func([]Event) error, opts Options) *Batcher {
	b := &Batcher{commit: commit, log: opts.Log, onCommit: opts.OnCommit, now: opts.Clock(), queue: make(chan *request, QueueLen), done: make(chan struct{}), checks: map[checkKey]struct{}{}}
	b.failing.Every = CommitLogInterval
	go b.run()
	return b
}

// Record implements State.
func (b *Batcher) Record(ctx context.Context, evs ...Event) error {
	r := &request{events: evs, done: make(chan error, 1)}
	if err := b.send(ctx, r, true); err != nil {
		return err
	}
	select {
	case err := <-r.done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// RecordCheck implements State.
func (b *Batcher) RecordCheck(ev Event) {
	key := checkKey{ev.App, ev.Device, ev.Version}
	b.checkMu.Lock()
	if ev.TS != b.checkMinute {
		clear(b.checks)
		b.checkMinute = ev.TS
	}
	_, seen := b.checks[key]
	if !seen && len(b.checks) < maxRecentChecks {
		b.checks[key] = struct{}{}
	}
	b.checkMu.Unlock()
	if seen {
		return
	}
	if err := b.send(context.Background(), &request{events: []Event{ev}}, false); err != nil && !errors.Is(err, ErrClosed) {
		b.log.Debug().Err(err).Msg("update check not recorded")
	}
}

// Flush implements State.
func (b *Batcher) Flush(ctx context.Context) error { return b.Record(ctx) }

// Closed reports whether Close was called.
func (b *Batcher) Closed() bool {
	b.mu.RLock()
	defer b.mu.RUnlock()
	return b.closed
}

// Close commits what is queued and stops the writer. It returns false if
// the Batcher was closed already.
func (b *Batcher) Close() bool {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return false
	}
	b.closed = true
	close(b.queue)
	b.mu.Unlock()
	<-b.done
	return true
}

func (b *Batcher) send(ctx context.Context, r *request, wait bool) error {
	b.mu.RLock()
	defer b.mu.RUnlock()
	if b.closed {
		return ErrClosed
	}
	if !wait {
		select {
		case b.queue <- r:
			return nil
		default:
			return errors.New("event queue full")
		}
	}
	select {
	case b.queue <- r:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// CheckDelay is how long update checks, which nobody waits for, may wait
// in the writer for other events to share their commit: with many devices
// a commit (and its fsync) per check or two would cost more than the
// checks' inserts. An event somebody waits for is committed at once.
const CheckDelay = 50 * time.Millisecond

func (b *Batcher) run() {
	defer close(b.done)
	var evs []Event
	timer := time.NewTimer(CheckDelay)
	for r := range b.queue {
		reqs, acked := []*request{r}, r.done != nil
		evs = append(evs[:0], r.events...)
		timer.Reset(CheckDelay)
		for len(evs) < MaxBatch {
			var wait <-chan time.Time
			if !acked {
				wait = timer.C
			}
			r, ok := b.next(wait)
			if !ok {
				break
			}
			reqs, acked = append(reqs, r), acked || r.done != nil
			evs = append(evs, r.events...)
		}
		var err error
		if len(evs) > 0 {
			start := time.Now()
			err = b.commit(evs)
			if b.onCommit != nil {
				b.onCommit(len(evs), time.Since(start), err)
			}
			b.logCommit(err, len(evs))
		}
		for _, r := range reqs {
			if r.done != nil {
				r.done <- err
			}
		}
	}
}

// CommitLogInterval is how often at most the log says that event commits
// are still failing: a database that is down fails every request's commit,
// and one line per request would bury everything else in the log.
const CommitLogInterval = 10 * time.Second

// logCommit logs the first commit that fails, then at most one summary per
// CommitLogInterval of the commits that failed since the last line, and
// one line when a commit succeeds again.
func (b *Batcher) logCommit(err error, events int) {
	if err == nil {
		if l, ok := b.failing.OK(b.now()); ok {
			b.log.Info().Int("failed_commits", l.Count).Int("failed_events", l.Items).Str("failing_for", l.For.Round(time.Second).String()).
				Msg("event commits succeed again")
		}
		return
	}
	switch l, ok := b.failing.Fail(b.now(), events); {
	case !ok:
	case l.First:
		b.log.Error().Err(err).Int("events", events).Msg("event commit failed")
	default:
		b.log.Error().Err(err).Int("failed_commits", l.Count).Int("failed_events", l.Items).Str("failing_for", l.For.Round(time.Second).String()).
			Msg("event commits still failing")
	}
}

// next returns the next queued request: at once if one is queued, else one
// that comes before wait fires (if wait is not nil). ok is false if none.
func (b *Batcher) next(wait <-chan time.Time) (r *request, ok bool) {
	select {
	case r, ok = <-b.queue:
		return r, ok
	default:
	}
	if wait == nil {
		return nil, false
	}
	select {
	case r, ok = <-b.queue:
		return r, ok
	case <-wait:
		return nil, false
	}
}
