package publish

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"time"

	"github.com/cartona/deploy/manifest"
	"github.com/cartona/deploy/store"
)

// Edit computes a channel's next pointer from its current one; it is how
// every change of a channel is made (upload, and promote, rollback or a
// staged rollout alike), through [Publisher.updatePointer].
//
// cur is the channel's latest.json, verified against the ACL with its
// expiry ignored, or nil when the channel has none that verifies. The edit
// may change cur and return it, or return a new value; returning nil
// writes nothing. The pointer's App, Channel, Sequence, Issued, Previous
// and By are set after the edit and any values it gave them are ignored; Expires, if left
// zero, becomes Issued plus [DefaultExpiry]; every other field is the
// edit's. An edit runs once per attempt, each time with a fresh cur, so it
// must compute its result from cur alone and report through variables it
// overwrites (never appends to) on each run.
type Edit func(cur *manifest.Latest) (*manifest.Latest, error)

// SequenceError reports a channel whose sequence cannot grow any more.
type SequenceError struct {
	App, Channel string
	Sequence     int64
}

func (e *SequenceError) Error() string {
	state := fmt.Sprintf("is at sequence %d, and the next would pass %d, the most the format allows", e.Sequence, int64(manifest.MaxSequence))
	if e.Sequence < 0 {
		state = fmt.Sprintf("has the negative sequence %d (a counter that wrapped)", e.Sequence)
	}
	return fmt.Sprintf("channel %s of app %s %s; nothing was published. Devices never accept a lower sequence on this channel, so publish to a new channel (for example channel=%s-2) and move devices to it", e.Channel, e.App, state, e.Channel)
}

// current is a channel's latest.json as read before a change.
type current struct {
	manifest.Latest
	key      string // of latest.json
	data     []byte // its bytes, when read
	etag     string // for the compare-and-swap; "" when there is none
	exists   bool   // some object is at the key
	parsed   bool   // its payload could be read
	verified bool   // it verifies against the ACL, expiry aside
	problem  error  // why it does not verify, when it exists and does not
}

// pointer returns the verified pointer, or nil.
func (c *current) pointer() *manifest.Latest {
	if !c.verified {
		return nil
	}
	l := c.Latest
	return &l
}

// link is the [manifest.Link] a pointer that replaces c carries: none when
// c is missing or does not verify (the history's chain then starts over).
func (c *current) link() *manifest.Link {
	if !c.verified {
		return nil
	}
	l := manifest.LinkTo(c.Sequence, c.data)
	return &l
}

// continues reports whether l, a verified pointer, was made to replace c.
func (c *current) continues(l *manifest.Latest) bool {
	prev := l.Previous
	if l.Halted != nil {
		prev = &l.Halted.Previous
	}
	want := c.link()
	if want == nil || prev == nil {
		return want == nil && prev == nil && !c.exists
	}
	return *prev == *want
}

// nextSequence is the sequence of the pointer that replaces c: one above
// the one it claims (verified or not: a device may have accepted it while
// its key was still granted). After an unreadable one, whose sequence is
// lost, it jumps to the Unix time, above what devices saw, which grew by
// one per change. It never passes [manifest.MaxSequence].
func (c *current) nextSequence(app, channel string, now time.Time) (int64, error) {
	switch {
	case !c.exists:
		return 1, nil
	case !c.parsed:
		return min(max(now.Unix(), 1), manifest.MaxSequence), nil
	case c.Sequence < 0 || c.Sequence >= manifest.MaxSequence:
		return 0, &SequenceError{App: app, Channel: channel, Sequence: c.Sequence}
	}
	return c.Sequence + 1, nil
}

// readCurrent reads a channel's latest.json and verifies it against acl.
// Only a store error fails: a pointer that is missing, oversized,
// unreadable or does not verify is reported in the result, so that a bad
// object never blocks the channel.
func (p *Publisher) readCurrent(ctx context.Context, acl *manifest.ACL, app, channel string) (*current, error) {
	key := manifest.LatestKey(app, channel)
	data, info, err := store.ReadSmall(ctx, p.Store, key, manifest.MaxLatestSize)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return &current{key: key}, nil
	case errors.Is(err, store.ErrTooLarge): // no device accepts it: replace it
		info, err = p.Store.Stat(ctx, key)
		if err != nil {
			return nil, err
		}
		return &current{key: key, etag: info.ETag, exists: true, problem: fmt.Errorf("it is over the %d bytes devices read", manifest.MaxLatestSize)}, nil
	case err != nil:
		return nil, err
	}
	cur := &current{key: key, data: data, etag: info.ETag, exists: true}
	// Checked at the zero time, so an expired pointer still counts as the
	// channel's current build.
	l, err := acl.VerifyLatest(data, manifest.Expect{App: app, Channel: channel})
	if err == nil {
		cur.Latest, cur.parsed, cur.verified = *l, true, true
		return cur, nil
	}
	cur.problem = err
	if env, err := manifest.ParseEnvelope(data, manifest.TypeLatest, manifest.MaxLatestSize); err == nil {
		cur.parsed = json.Unmarshal(env.Payload, &cur.Latest) == nil
	}
	return cur, nil
}

// updatePointer changes a channel's pointer with edit: it reads the ACL
// and the current latest.json (verified), lets edit compute the next
// pointer, gives it the next sequence, signs it, checks that it verifies
// as a device would check it, writes it create-only at its history key
// and then swaps latest.json with compare-and-swap. When another writer
// changed latest.json meanwhile, it starts again from a fresh read.
//
// Without start, a channel that has no latest.json is refused
// ([MissingChannel]) and nothing is written: only an upload and `deploy
// channel create` give a channel its first pointer.
//
// It returns the channel's pointer afterwards (the one written, or the
// current verified one when edit wrote nothing; nil if neither) and
// whether it wrote.
//
// Each pointer links to the one it replaces (Previous, when that one
// verifies) and names its signer (By).
//
// History before latest.json: the signed pointer is first written
// create-only at history/<sequence>.json, which claims the sequence, so
// two writers never both write sequence n and every latest.json has its
// copy in the history. A writer that finds its sequence taken by another
// writer's pointer made to replace the same current one (that writer lost
// the swap, is slow, or died before it) swaps that pointer into
// latest.json itself, then starts again from a fresh read; the slow writer,
// whose claim is then in, reports it written. So every claimed pointer
// becomes latest.json, and the history verifies as a chain
// ([manifest.ACL.VerifyHistory]). Only an entry that is not such a pointer
// (not signed by a granted key, or linking elsewhere) is passed over, as
// an orphan that is never overwritten, and the writer takes the next
// sequence.
func (p *Publisher) updatePointer(ctx context.Context, app, channel string, edit Edit, start bool) (*manifest.Latest, bool, error) {
	out, err := retry(ctx, p.Store.Location(manifest.LatestKey(app, channel)), func() (pointerChange, error) {
		return p.changePointer(ctx, app, channel, edit, start)
	})
	return out.l, out.written, err
}

// pointerChange is what one attempt of updatePointer did.
type pointerChange struct {
	l       *manifest.Latest
	written bool
}

// changePointer is one attempt of updatePointer.
func (p *Publisher) changePointer(ctx context.Context, app, channel string, edit Edit, start bool) (pointerChange, error) {
	acl, _, err := ReadACL(ctx, p.Store, p.Trust)
	if err != nil {
		return pointerChange{}, err
	}
	cur, err := p.readCurrent(ctx, acl, app, channel)
	if err != nil {
		return pointerChange{}, err
	}
	if !cur.exists && !start {
		return pointerChange{}, MissingChannel(app, channel)
	}
	next, err := edit(cur.pointer())
	if err != nil || next == nil {
		return pointerChange{cur.pointer(), false}, err
	}
	// An edit of a halted channel's pointer starts from the pointer the
	// halt wraps; what it signs is a pointer, never the halt.
	next.Halted = nil
	next.App, next.Channel, next.Previous, next.By = app, channel, cur.link(), acl.Uploader(manifest.Public(p.Key), app)
	signed, err := p.claimSequence(ctx, acl, cur, *next)
	switch {
	case err != nil:
		return pointerChange{}, err
	case signed.pending: // another writer's pointer: swap it in, then start again
		if err := p.swap(ctx, cur, signed.data); err != nil {
			return pointerChange{}, err
		}
		return pointerChange{}, errHelped
	case cur.exists && !cur.verified: // an unlinked claim: a plain swap
		return pointerChange{&signed.Latest, true}, p.swap(ctx, cur, signed.data)
	}
	if err := p.settle(ctx, acl, signed); err != nil {
		return pointerChange{}, err
	}
	return pointerChange{&signed.Latest, true}, nil
}

// swap replaces cur with data in latest.json, by compare-and-swap.
func (p *Publisher) swap(ctx context.Context, cur *current, data []byte) error {
	opt := store.PutOptions{CreateOnly: !cur.exists, IfMatch: cur.etag, ContentType: "application/json", CacheControl: shortCache}
	_, err := p.Store.Put(ctx, cur.key, bytes.NewReader(data), opt)
	return err
}

// settle brings a claimed pointer, linked to the one it replaces, into
// latest.json: it swaps it in unless another writer already did (latest.json
// is at its sequence or past it). A channel that moved another way (its
// latest.json replaced around the history) makes the claim an orphan, and
// the change starts again (a lost race).
func (p *Publisher) settle(ctx context.Context, acl *manifest.ACL, sp *signedPointer) error {
	_, err := retry(ctx, p.Store.Location(manifest.LatestKey(sp.App, sp.Channel)), func() (struct{}, error) {
		cur, err := p.readCurrent(ctx, acl, sp.App, sp.Channel)
		switch {
		case err != nil:
			return struct{}{}, err
		case cur.parsed && cur.Sequence >= sp.Sequence:
			return struct{}{}, nil
		case !cur.continues(&sp.Latest):
			return struct{}{}, errOrphaned
		}
		return struct{}{}, p.swap(ctx, cur, sp.data)
	})
	if errors.Is(err, errOrphaned) {
		return fmt.Errorf("%w: %w", errOrphaned, store.ErrConflict)
	}
	return err
}

var (
	// errHelped is a lost race: the attempt swapped in another writer's
	// pending pointer instead of its own, and starts again.
	errHelped = fmt.Errorf("swapped in another writer's pending pointer: %w", store.ErrConflict)
	// errOrphaned reports a claimed pointer that can no longer become
	// latest.json.
	errOrphaned = errors.New("the channel changed around its history")
)

// signedPointer is a pointer and its envelope's bytes. A pending one is
// another writer's, found in the history but not yet in latest.json.
type signedPointer struct {
	manifest.Latest
	data    []byte
	pending bool
}

// claimSequence signs next with the sequence that follows cur and writes
// it create-only at its history key. next has its App and Channel. When
// history already holds that sequence, with another writer's pointer made
// to replace cur, that pointer is returned as pending; any other entry
// there (an orphan) is passed over for the next sequence.
func (p *Publisher) claimSequence(ctx context.Context, acl *manifest.ACL, cur *current, next manifest.Latest) (*signedPointer, error) {
	now := p.now()
	next.Issued = now
	seq, err := cur.nextSequence(next.App, next.Channel, now)
	if err != nil {
		return nil, err
	}
	if next.Expires.IsZero() {
		next.Expires = now.Add(DefaultExpiry)
	}
	for range maxRetries {
		next.Sequence = seq
		data, err := p.signPointer(acl, next)
		if err != nil {
			return nil, err
		}
		_, err = p.Store.Put(ctx, manifest.HistoryKey(next.App, next.Channel, seq), bytes.NewReader(data), store.PutOptions{CreateOnly: true, ContentType: "application/json", CacheControl: immutableCache})
		if !errors.Is(err, fs.ErrExist) {
			return &signedPointer{Latest: next, data: data}, err
		}
		if pending, err := p.pendingAt(ctx, acl, cur, next.App, next.Channel, seq); pending != nil || err != nil {
			return pending, err
		}
		if seq >= manifest.MaxSequence {
			return nil, &SequenceError{App: next.App, Channel: next.Channel, Sequence: seq}
		}
		seq++
	}
	return nil, fmt.Errorf("%d sequences of channel %s are taken in its history; try again", maxRetries, next.Channel)
}

// pendingAt returns the history entry at seq as a pending pointer if it
// verifies and was made to replace cur, else nil.
func (p *Publisher) pendingAt(ctx context.Context, acl *manifest.ACL, cur *current, app, channel string, seq int64) (*signedPointer, error) {
	data, _, err := store.ReadSmall(ctx, p.Store, manifest.HistoryKey(app, channel, seq), manifest.MaxLatestSize)
	if errors.Is(err, store.ErrTooLarge) || errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	l, err := acl.VerifyLatest(data, manifest.Expect{App: app, Channel: channel})
	if err != nil || l.Sequence != seq || !cur.continues(l) {
		return nil, nil
	}
	return &signedPointer{Latest: *l, data: data, pending: true}, nil
}

// signPointer signs l and checks it as a device would, so that nothing
// written can be refused by a verifier (too large, not granted, expired).
func (p *Publisher) signPointer(acl *manifest.ACL, l manifest.Latest) ([]byte, error) {
	env, err := manifest.Sign(manifest.TypeLatest, l, p.Key)
	if err != nil {
		return nil, err
	}
	data := env.Marshal()
	if _, err := acl.VerifyLatest(data, manifest.Expect{App: l.App, Channel: l.Channel, MinSequence: l.Sequence, Now: l.Issued}); err != nil {
		return nil, fmt.Errorf("the new latest.json of channel %s would not verify (%w); nothing was written to the channel", l.Channel, err)
	}
	return data, nil
}
