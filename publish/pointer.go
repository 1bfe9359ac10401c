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
// writes nothing. The pointer's App, Channel, Sequence and Issued are set
// after the edit and any values it gave them are ignored; Expires, if left
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
	etag     string // for the compare-and-swap; "" when there is none
	exists   bool   // some object is at the key
	parsed   bool   // its payload could be read
	verified bool   // it verifies against the ACL, expiry aside
}

// pointer returns the verified pointer, or nil.
func (c *current) pointer() *manifest.Latest {
	if !c.verified {
		return nil
	}
	l := c.Latest
	return &l
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
		return &current{}, nil
	case errors.Is(err, store.ErrTooLarge): // no device accepts it: replace it
		info, err = p.Store.Stat(ctx, key)
		if err != nil {
			return nil, err
		}
		return &current{etag: info.ETag, exists: true}, nil
	case err != nil:
		return nil, err
	}
	cur := &current{etag: info.ETag, exists: true}
	// Checked at the zero time, so an expired pointer still counts as the
	// channel's current build.
	if l, err := acl.VerifyLatest(data, manifest.Expect{App: app, Channel: channel}); err == nil {
		cur.Latest, cur.parsed, cur.verified = *l, true, true
	} else if env, err := manifest.ParseEnvelope(data, manifest.TypeLatest, manifest.MaxLatestSize); err == nil {
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
// It returns the channel's pointer afterwards (the one written, or the
// current verified one when edit wrote nothing; nil if neither) and
// whether it wrote.
//
// History before latest.json: the signed pointer is first written
// create-only at history/<sequence>.json, which claims the sequence, so
// two writers never both write sequence n and every latest.json has its
// copy in the history. When the swap of latest.json then loses the race
// (or the writer dies in between), that history entry is an orphan: a
// signed pointer that never was latest.json. It stays (history is never
// overwritten or deleted), the loser starts again from a fresh read, and
// any writer passes over a sequence that history already holds. History
// thus holds every pointer that was latest.json, in sequence order, and
// rarely an orphan between two of them: its sequences are increasing but
// not always consecutive.
func (p *Publisher) updatePointer(ctx context.Context, app, channel string, edit Edit) (*manifest.Latest, bool, error) {
	type outcome struct {
		l       *manifest.Latest
		written bool
	}
	out, err := retry(ctx, p.Store.Location(manifest.LatestKey(app, channel)), func() (outcome, error) {
		acl, _, err := ReadACL(ctx, p.Store, p.Trust)
		if err != nil {
			return outcome{}, err
		}
		cur, err := p.readCurrent(ctx, acl, app, channel)
		if err != nil {
			return outcome{}, err
		}
		next, err := edit(cur.pointer())
		if err != nil || next == nil {
			return outcome{cur.pointer(), false}, err
		}
		next.App, next.Channel = app, channel
		signed, err := p.claimSequence(ctx, acl, cur, *next)
		if err != nil {
			return outcome{}, err
		}
		opt := store.PutOptions{CreateOnly: !cur.exists, IfMatch: cur.etag, ContentType: "application/json", CacheControl: shortCache}
		_, err = p.Store.Put(ctx, manifest.LatestKey(app, channel), bytes.NewReader(signed.data), opt)
		return outcome{&signed.Latest, true}, err
	})
	return out.l, out.written, err
}

// signedPointer is a pointer and its envelope's bytes.
type signedPointer struct {
	manifest.Latest
	data []byte
}

// claimSequence signs next with the sequence that follows cur and writes
// it create-only at its history key. next has its App and Channel. A sequence that history already holds
// (an orphan, see updatePointer) is passed over for the next one.
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
			return &signedPointer{next, data}, err
		}
		if seq >= manifest.MaxSequence {
			return nil, &SequenceError{App: next.App, Channel: next.Channel, Sequence: seq}
		}
		seq++
	}
	return nil, fmt.Errorf("%d sequences of channel %s are taken in its history; try again", maxRetries, next.Channel)
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
