package tracker

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io/fs"

	"github.com/cartona/deploy/manifest"
	"github.com/cartona/deploy/state"
	"github.com/cartona/deploy/store"
)

// settlePending handles a history entry that already holds the sequence a
// halt needs: an uploader claimed it for its next pointer (publish writes
// history first, then swaps latest.json). If that pointer verifies and
// links to the current one, it is swapped in for its writer, as publish
// does, and the halt is tried again on top of it (store.ErrConflict).
func (s *Server) settlePending(ctx context.Context, acl *manifest.ACL, r state.Halt, cur manifest.Link, etag string) error {
	key := manifest.HistoryKey(r.App, r.Channel, cur.Sequence+1)
	data, _, err := store.ReadSmall(ctx, s.cfg.Store, key, manifest.MaxLatestSize)
	if err != nil {
		return err
	}
	l, err := acl.VerifyLatest(data, manifest.Expect{App: r.App, Channel: r.Channel, Now: s.now()})
	if err != nil || l.Halted != nil || l.Previous == nil || *l.Previous != cur {
		return fmt.Errorf("%s holds another pointer than the next one; the halt holds on the tracker only", key)
	}
	_, err = s.cfg.Store.Put(ctx, manifest.LatestKey(r.App, r.Channel), bytes.NewReader(data),
		store.PutOptions{IfMatch: etag, Size: int64(len(data)), ContentType: "application/json", CacheControl: "public, max-age=60"})
	if err == nil || errors.Is(err, store.ErrConflict) {
		return store.ErrConflict
	}
	return err
}

// haltAttempts bounds the compare-and-swap retries of writeHalt.
const haltAttempts = 3

// writeHalt writes a halt of the channel's current pointer as its
// latest.json (its history entry first), signed with key, if that pointer
// still has the halted rollout as candidate. The halt wraps the pointer
// whole, so it can only take the candidate away (docs/format.md, "Halt").
// It verifies the halt as devices will before writing it.
func (s *Server) writeHalt(ctx context.Context, r state.Halt, key ed25519.PrivateKey) error {
	for range haltAttempts {
		err := s.tryHalt(ctx, r, key)
		if !errors.Is(err, store.ErrConflict) {
			s.man.latest.forget(r.App + "/" + r.Channel)
			return err
		}
	}
	return fmt.Errorf("latest.json of %s/%s kept changing; the halt holds on the tracker only", r.App, r.Channel)
}

func (s *Server) tryHalt(ctx context.Context, r state.Halt, key ed25519.PrivateKey) error {
	data, info, err := store.ReadSmall(ctx, s.cfg.Store, manifest.LatestKey(r.App, r.Channel), manifest.MaxLatestSize)
	if err != nil {
		return err
	}
	aclData, err := s.man.aclData()
	if err != nil {
		return err
	}
	exp := manifest.Expect{App: r.App, Channel: r.Channel, Now: s.now()}
	l, acl, err := s.cfg.Trust.VerifyLatest(aclData, data, exp)
	if err != nil {
		return fmt.Errorf("the channel's pointer does not verify: %w", err)
	}
	if l.Halted != nil || l.Candidate == nil || l.Candidate.Rollout != r.Rollout {
		return nil // already halted, or the uploaders moved on
	}
	env, err := manifest.ParseEnvelope(data, manifest.TypeLatest, manifest.MaxLatestSize)
	if err != nil {
		return err
	}
	h := manifest.Halt{App: r.App, Channel: r.Channel, Sequence: l.Sequence + 1, Issued: s.now().UTC().Truncate(1e9),
		Reason: r.Reason, Pointer: *env, Previous: manifest.LinkTo(l.Sequence, data)}
	signed, err := manifest.Sign(manifest.TypeHalt, h, key)
	if err != nil {
		return err
	}
	out := signed.Marshal()
	if _, err := acl.VerifyLatest(out, exp); err != nil {
		return fmt.Errorf("the tracker's halt would not verify (does the ACL grant its key can_halt for %s?): %w", r.App, err)
	}
	put := func(k string, opt store.PutOptions) error {
		opt.ContentType, opt.Size = "application/json", int64(len(out))
		_, err := s.cfg.Store.Put(ctx, k, bytes.NewReader(out), opt)
		return err
	}
	err = put(manifest.HistoryKey(r.App, r.Channel, h.Sequence), store.PutOptions{CreateOnly: true, CacheControl: "public, max-age=31536000, immutable"})
	if errors.Is(err, fs.ErrExist) {
		return s.settlePending(ctx, acl, r, h.Previous, info.ETag)
	}
	if err != nil {
		return err
	}
	if err := put(manifest.LatestKey(r.App, r.Channel), store.PutOptions{IfMatch: info.ETag, CacheControl: "public, max-age=60"}); err != nil {
		return err
	}
	s.log.Warn().Str("app", r.App).Str("channel", r.Channel).Int64("sequence", h.Sequence).Msg("halt written to the store as latest.json")
	return nil
}
