package publish

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"strconv"
	"strings"
	"time"

	"github.com/cartona/deploy/manifest"
	"github.com/cartona/deploy/store"
)

// ChangeResult is what a release operation did to a channel, or, in a dry
// run, would do.
type ChangeResult struct {
	App     string `json:"app"`
	Channel string `json:"channel"`
	// Written is false when nothing changed, and in a dry run.
	Written bool `json:"written"`
	DryRun  bool `json:"dry_run"`
	// Before is the channel's pointer before the change (nil: none).
	Before *manifest.Latest `json:"before"`
	// After is the pointer signed (in a dry run: that would be signed);
	// Before when nothing changed.
	After *manifest.Latest `json:"after"`
	// Keys are the store keys written (would be written), in order.
	Keys        []string `json:"keys"`
	Invalidated bool     `json:"invalidated"`
}

// Change applies edit to a channel that exists through the pointer-update
// loop, after checking that the publisher's key may upload to app; dryRun
// runs the edit on the current pointer and signs the result, as the loop
// would, but writes nothing. Then it purges latest.json from the CDN.
//
// A channel without latest.json is refused with a [ReleaseError] that
// names `deploy channel create` ([MissingChannel]): a release command
// (promote, rollout, rollback, channel set) never starts a channel, so a
// typo in a channel name cannot start a new one. Only
// [Publisher.CreateChannel] and an upload do.
func (p *Publisher) Change(ctx context.Context, app, channel string, edit Edit, dryRun bool) (*ChangeResult, error) {
	return p.change(ctx, app, channel, edit, dryRun, false)
}

// MissingChannel is the refusal of a release command on a channel that has
// no latest.json: it names the command that starts one.
func MissingChannel(app, channel string) error {
	return refuse("app %s has no channel %s: release commands change only a channel that exists, and nothing was written; start it with\n  deploy channel create app=%s channel=%s build=N (or from=CHANNEL)", app, channel, app, channel)
}

// change is [Publisher.Change]; start lets it give the channel its first
// latest.json.
func (p *Publisher) change(ctx context.Context, app, channel string, edit Edit, dryRun, start bool) (*ChangeResult, error) {
	if err := manifest.CheckName("app", app); err != nil {
		return nil, err
	}
	if err := manifest.CheckName("channel", channel); err != nil {
		return nil, err
	}
	acl, _, err := p.grant(ctx, app)
	if err != nil {
		return nil, err
	}
	if err := p.checkNotDeleted(ctx, app, channel); err != nil {
		return nil, err
	}
	res := &ChangeResult{App: app, Channel: channel, DryRun: dryRun, Keys: []string{}}
	var held []*lease
	defer func() {
		for _, l := range held {
			l.release(ctx)
		}
	}()
	recording := func(cur *manifest.Latest) (*manifest.Latest, error) {
		res.Before = clonePointer(cur)
		next, err := edit(cur)
		if err != nil || next == nil || dryRun {
			return next, err
		}
		// A prune spares the builds the channel is about to name, until it
		// names them; devices on the channel get patches to their files.
		for _, ref := range added(res.Before, next) { // the edit may change cur in place
			l, err := p.holdBuild(ctx, app, ref)
			if err != nil {
				return nil, err
			}
			held = append(held, l)
			if ref.ID == next.Build.ID || next.Candidate != nil && ref.ID == next.Candidate.Build.ID {
				if err := p.patchTo(ctx, acl, app, channel, res.Before, ref, l); err != nil {
					return nil, err
				}
			}
		}
		return next, nil
	}
	var changed bool
	if dryRun {
		res.After, changed, err = p.draft(ctx, acl, app, channel, recording, start)
	} else {
		res.After, res.Written, err = p.updatePointer(ctx, app, channel, recording, start)
		changed = res.Written
	}
	if err != nil {
		return nil, err
	}
	if changed {
		res.Keys = []string{manifest.HistoryKey(app, channel, res.After.Sequence), manifest.LatestKey(app, channel)}
	}
	if res.Written {
		res.Invalidated, err = p.purge(ctx, app, channel)
	}
	return res, err
}

// added returns the builds next names (stable, candidate, fallbacks) that
// cur does not.
func added(cur, next *manifest.Latest) []manifest.BuildRef {
	named := func(l *manifest.Latest) []manifest.BuildRef {
		if l == nil {
			return nil
		}
		refs := append([]manifest.BuildRef{l.Build}, l.Fallbacks...)
		if l.Candidate != nil {
			refs = append(refs, l.Candidate.Build)
		}
		return refs
	}
	had := map[string]bool{}
	for _, ref := range named(cur) {
		had[ref.ID] = true
	}
	var out []manifest.BuildRef
	for _, ref := range named(next) {
		if !had[ref.ID] {
			had[ref.ID] = true
			out = append(out, ref)
		}
	}
	return out
}

// draft is a dry run of updatePointer: the pointer it would sign now,
// checked as a device would check it, or the current one when the edit
// changes nothing (false).
func (p *Publisher) draft(ctx context.Context, acl *manifest.ACL, app, channel string, edit Edit, start bool) (*manifest.Latest, bool, error) {
	cur, err := p.readCurrent(ctx, acl, app, channel)
	if err != nil {
		return nil, false, err
	}
	if !cur.exists && !start {
		return nil, false, MissingChannel(app, channel)
	}
	next, err := edit(cur.pointer())
	if err != nil || next == nil {
		return cur.pointer(), false, err
	}
	now := p.now()
	next.App, next.Channel, next.Previous, next.By, next.Issued = app, channel, cur.link(), acl.Uploader(manifest.Public(p.Key), app), now
	if next.Sequence, err = cur.nextSequence(app, channel, now); err != nil {
		return nil, false, err
	}
	if next.Expires.IsZero() {
		next.Expires = now.Add(DefaultExpiry)
	}
	_, err = p.signPointer(acl, *next)
	return next, err == nil, err
}

// checkNotDeleted refuses a channel that was deleted: it has no
// latest.json but a history past its first pointer. Starting it again
// would bring its old pointers back one by one (see updatePointer).
// History holding only sequence 1 is a first pointer still being written
// by a concurrent writer (or a channel deleted right after it was made),
// which the loop completes.
func (p *Publisher) checkNotDeleted(ctx context.Context, app, channel string) error {
	if _, err := p.Store.Stat(ctx, manifest.LatestKey(app, channel)); !errors.Is(err, fs.ErrNotExist) {
		return nil // it exists, or the write will report the store's error
	}
	infos, err := p.Store.List(ctx, manifest.HistoryPrefix(app, channel))
	if err != nil {
		return err
	}
	for _, in := range infos {
		if seq, ok := manifest.ParseHistoryKey(app, channel, in.Key); ok && seq > 1 {
			return refuse("channel %s of %s was deleted, and its name is not used again (devices remember its sequence); pick a new channel name", channel, app)
		}
	}
	return nil
}

// purge invalidates the channel's latest.json in the CDN, if there is one.
func (p *Publisher) purge(ctx context.Context, app, channel string) (bool, error) {
	if p.Invalidator == nil {
		return false, nil
	}
	if err := p.Invalidator.Invalidate(ctx, []string{p.cdnPath(manifest.LatestKey(app, channel))}); err != nil {
		return false, &InvalidationError{Channel: channel, Err: err}
	}
	return true, nil
}

// InvalidationError reports a channel that changed in the store when the
// CDN invalidation of its latest.json then failed.
type InvalidationError struct {
	Channel string
	Err     error
}

func (e *InvalidationError) Error() string {
	return fmt.Sprintf("changed channel %s, but the CDN invalidation failed (devices see it within 60 s anyway): %v", e.Channel, e.Err)
}

func (e *InvalidationError) Unwrap() error { return e.Err }

// clonePointer copies l deeply enough that an edit of the copy leaves l
// alone.
func clonePointer(l *manifest.Latest) *manifest.Latest {
	if l == nil {
		return nil
	}
	c := *l
	if l.Candidate != nil {
		cand := *l.Candidate
		c.Candidate = &cand
	}
	c.Fallbacks = append([]manifest.BuildRef(nil), l.Fallbacks...)
	return &c
}

// ParseBuild reads a build as the user names it: its number ("3") or its
// id ("retailer-3"), which must be of app.
func ParseBuild(app, s string) (int64, error) {
	num := s
	if i := strings.LastIndexByte(s, '-'); i > 0 {
		if owner := s[:i]; owner != app {
			return 0, invalid(fmt.Errorf("build %s is a build of app %s, not of %s; builds move only within their app", s, owner, app))
		}
		num = s[i+1:]
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n < 1 || n > manifest.MaxSequence {
		return 0, invalid(fmt.Errorf("%q is not a build: give its number or id as `deploy list builds app=%s` shows them, such as 3 or %s", s, app, manifest.BuildID(app, 3)))
	}
	return n, nil
}

// ReadBuild reads build number n of app and verifies its record against
// the ACL: only a build whose record verifies can be put on a channel.
func (p *Publisher) ReadBuild(ctx context.Context, app string, n int64) (*manifest.Build, error) {
	acl, _, err := ReadACL(ctx, p.Store, p.Trust)
	if err != nil {
		return nil, err
	}
	data, _, err := store.ReadSmall(ctx, p.Store, manifest.BuildKey(app, n), manifest.MaxBuildSize)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil, refuse("app %s has no build %d; see its builds with `deploy list builds app=%s`", app, n, app)
	case errors.Is(err, store.ErrTooLarge):
		return nil, refuse("the record of build %d of %s is over its size limit, so devices would refuse it; pick another build", n, app)
	case err != nil:
		return nil, err
	}
	b, err := manifest.VerifyBuild(acl, data, app)
	if err != nil {
		return nil, refuse("the record of build %d of %s does not verify (%v), so it cannot be put on a channel; pick another build", n, app, err)
	}
	return b, nil
}

// Channels lists the channels of app that have a latest.json.
func Channels(ctx context.Context, s store.Store, app string) ([]string, error) {
	infos, err := s.List(ctx, manifest.ChannelsPrefix(app))
	if err != nil {
		return nil, err
	}
	var out []string
	for _, in := range infos {
		if a, channel, ok := manifest.ParseLatestKey(in.Key); ok && a == app {
			out = append(out, channel)
		}
	}
	return out, nil
}

// Pointer reads the channel's latest.json verified against the ACL, expiry
// aside; nil when the channel has none that verifies.
func (p *Publisher) Pointer(ctx context.Context, app, channel string) (*manifest.Latest, error) {
	acl, _, err := ReadACL(ctx, p.Store, p.Trust)
	if err != nil {
		return nil, err
	}
	cur, err := p.readCurrent(ctx, acl, app, channel)
	if err != nil {
		return nil, err
	}
	return cur.pointer(), nil
}

// CreateChannel starts a channel at build with the given settings. It
// refuses a channel that exists, or existed: devices remember the highest
// sequence they saw on a channel and would refuse it starting over.
func (p *Publisher) CreateChannel(ctx context.Context, app, channel string, build manifest.BuildRef, settings manifest.Settings, notes string, dryRun bool) (*ChangeResult, error) {
	infos, err := p.Store.List(ctx, manifest.ChannelsPrefix(app)+channel+"/")
	if err != nil {
		return nil, err
	}
	if len(infos) > 0 {
		if err := p.checkNotDeleted(ctx, app, channel); err != nil {
			return nil, err
		}
		return nil, refuse("app %s has a channel %s; change it with `deploy promote` or `deploy channel set`, or pick a new name", app, channel)
	}
	return p.change(ctx, app, channel, Noted(notes, time.Time{}, func(cur *manifest.Latest) (*manifest.Latest, error) {
		if cur != nil {
			return nil, refuse("channel %s of %s was created meanwhile; look at it with `deploy channel list app=%s`", channel, app, app)
		}
		return &manifest.Latest{Build: build, Settings: settings}, nil
	}), dryRun, true)
}

// DeleteChannel removes the channel's latest.json, so that devices on it
// are offered nothing; its history stays, verifiable, and the name stays
// taken (see [Publisher.CreateChannel]). It returns the keys removed.
func (p *Publisher) DeleteChannel(ctx context.Context, app, channel string, dryRun bool) ([]string, error) {
	if _, _, err := p.grant(ctx, app); err != nil {
		return nil, err
	}
	key := manifest.LatestKey(app, channel)
	if _, err := p.Store.Stat(ctx, key); errors.Is(err, fs.ErrNotExist) {
		return nil, refuse("app %s has no channel %s; see its channels with `deploy channel list app=%s`", app, channel, app)
	} else if err != nil {
		return nil, err
	}
	if dryRun {
		return []string{key}, nil
	}
	if err := p.Store.Delete(ctx, key); err != nil {
		return nil, err
	}
	_, err := p.purge(ctx, app, channel)
	return []string{key}, err
}
