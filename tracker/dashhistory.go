package tracker

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/cartona/deploy/dashboard"
	"github.com/cartona/deploy/manifest"
)

// historyShown is how many of a channel's newest history entries the
// dashboard shows.
const historyShown = 50

// History returns the channel's newest history entries, newest first, each
// verified on its own against the ACL: its signature and grant, not its
// expiry nor its link to the one before (an old pointer has expired or been
// replaced legitimately). A channel published before history entries were
// kept shows its current pointer. Results are cached like the manifests.
func (d *dashboardSource) History(ctx context.Context, app, channel string) ([]dashboard.Entry, error) {
	return d.history.get(ctx, app+"/"+channel, func() ([]dashboard.Entry, error) { return d.readHistory(app, channel) })
}

func (d *dashboardSource) readHistory(app, channel string) ([]dashboard.Entry, error) {
	seqs, err := d.historySequences(app, channel)
	if err != nil {
		return nil, err
	}
	if len(seqs) == 0 {
		return d.currentPointer(app, channel)
	}
	acl, err := d.s.man.verifiedACL()
	if err != nil {
		return nil, err
	}
	// One entry more than shown, so the oldest shown has the pointer it
	// changed.
	seqs = seqs[max(0, len(seqs)-historyShown-1):]
	var prev *manifest.Latest
	out := make([]dashboard.Entry, 0, len(seqs))
	for _, seq := range seqs {
		e, l := d.historyEntry(acl, app, channel, seq)
		if l != nil {
			e.Change = changeFrom(prev, l)
			if e.Change == dashboard.ChangeRollback && prev.Candidate != nil && l.Candidate == nil {
				b := dashboardBuild(prev.Candidate.Build)
				e.Dropped = &b
			}
		}
		out, prev = append(out, e), l
	}
	if len(out) > historyShown {
		out = out[1:]
	}
	slices.Reverse(out)
	return out, nil
}

// historySequences lists the sequences of the channel's history entries in
// increasing order.
func (d *dashboardSource) historySequences(app, channel string) ([]int64, error) {
	ctx, cancel := context.WithTimeout(context.Background(), d.s.man.timeout)
	defer cancel()
	prefix := manifest.HistoryPrefix(app, channel)
	infos, err := d.s.cfg.Store.List(ctx, prefix)
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", prefix, err)
	}
	var seqs []int64
	for _, in := range infos {
		if seq, ok := manifest.ParseHistoryKey(app, channel, in.Key); ok {
			seqs = append(seqs, seq)
		}
	}
	slices.Sort(seqs)
	return seqs, nil
}

// historyEntry reads and verifies the entry at seq. An entry that does not
// verify says why, and its pointer is nil.
func (d *dashboardSource) historyEntry(acl *manifest.ACL, app, channel string, seq int64) (dashboard.Entry, *manifest.Latest) {
	e := dashboard.Entry{Sequence: seq}
	data, err := d.s.man.read(manifest.HistoryKey(app, channel, seq), manifest.MaxLatestSize)
	if err != nil {
		e.Problem = "the tracker cannot read it right now"
		return e, nil
	}
	l, err := acl.VerifyHistoryEntry(app, channel, seq, data)
	if err != nil {
		e.Problem = fmt.Sprintf("it fails verification (%s)", ruleOf(err))
		return e, nil
	}
	e = verifiedEntry(acl, data, l)
	if c := l.Candidate; c != nil {
		e.Rollout = &dashboard.Rollout{ID: c.Rollout, Candidate: dashboardBuild(c.Build), Percent: float64(c.Percent),
			State: map[bool]string{true: dashboard.Paused, false: dashboard.Running}[c.Paused]}
	}
	return e, l
}

func ruleOf(err error) string {
	if r := manifest.RuleOf(err); r != "" {
		return string(r)
	}
	return "malformed"
}

// changeFrom is what l changed from prev, the entry stored before it: ""
// when l links to another entry (or prev did not verify).
func changeFrom(prev, l *manifest.Latest) string {
	link := l.Previous
	if l.Halted != nil {
		link = &l.Halted.Previous
	}
	switch {
	case link == nil:
		return dashboard.ChangeFirst
	case prev == nil || link.Sequence != prev.Sequence:
		return ""
	}
	return change(prev, l)
}

// change is what l changed from prev, the pointer before it.
func change(prev, l *manifest.Latest) string {
	pc, lc := prev.Candidate, l.Candidate
	switch {
	case l.Halted != nil:
		return dashboard.ChangeHalt
	case l.Build.Number < prev.Build.Number:
		return dashboard.ChangeRollback
	case l.Build.ID != prev.Build.ID:
		return dashboard.ChangeNewer
	case lc == nil && pc != nil:
		return dashboard.ChangeRollback
	case lc != nil && (pc == nil || lc.Rollout != pc.Rollout || lc.Percent != pc.Percent):
		return dashboard.ChangeRollout
	case lc != nil && lc.Paused != pc.Paused:
		return map[bool]string{true: dashboard.ChangePause, false: dashboard.ChangeResume}[lc.Paused]
	}
	return dashboard.ChangeSettings
}

// currentPointer is the history of a channel without history entries: its
// current verified pointer, with the notes of its build's record.
func (d *dashboardSource) currentPointer(app, channel string) ([]dashboard.Entry, error) {
	rel, err := d.s.man.release(context.Background(), app, channel)
	var ae *appError
	if errors.As(err, &ae) && ae.Code == codeNotFound {
		return nil, fmt.Errorf("%s: %w", ae.Message, dashboard.ErrNotFound)
	}
	if err != nil {
		return []dashboard.Entry{}, nil // Channels says why it is not served
	}
	e := verifiedEntry(rel.acl, rel.data, rel.pointer)
	e.Rollout = d.rollout(rel)
	if e.Notes == "" && rel.pointer.Halted == nil {
		if b, _, err := d.s.man.verifiedBuild(app, rel.pointer.Build.Number); err == nil {
			e.Notes = b.Notes
		}
	}
	return []dashboard.Entry{e}, nil
}

// verifiedEntry is the entry of l, verified from data against acl: who
// signed it, when, its stable build and its notes. A halt's entry is the
// halt's: the user whose can_halt key signed it, when, and its reason; the
// halted pointer's uploader, time and notes are the entry before it.
func verifiedEntry(acl *manifest.ACL, data []byte, l *manifest.Latest) dashboard.Entry {
	b := dashboardBuild(l.Build)
	e := dashboard.Entry{Sequence: l.Sequence, Issued: l.Issued, By: l.By, Build: &b, Notes: l.Notes, Verified: true}
	switch {
	case l.Halted != nil:
		e.Issued, e.By, e.Notes = l.Halted.Issued, signer(acl, data, manifest.TypeHalt, l.App), l.Halted.Reason
	case e.By == "":
		e.By = signer(acl, data, manifest.TypeLatest, l.App)
	}
	return e
}

// signer is the ACL user whose key signed the verified envelope data, a
// pointer (typ manifest.TypeLatest) or a halt (manifest.TypeHalt), with
// the grant its type needs: can_upload or can_halt for app.
func signer(acl *manifest.ACL, data []byte, typ, app string) string {
	env, err := manifest.ParseEnvelope(data, typ, manifest.MaxLatestSize)
	if err != nil {
		return ""
	}
	holder := acl.Uploader
	if typ == manifest.TypeHalt {
		holder = acl.Halter
	}
	for _, k := range env.SignedBy(acl.Keys()) {
		if name := holder(k, app); name != "" {
			return name
		}
	}
	return ""
}
