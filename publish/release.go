package publish

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/cartona/deploy/manifest"
)

// The edits of release operations: pure functions from a channel's current
// pointer to its next one, run by Publisher.updatePointer. Each refuses
// bad input with a [ReleaseError] before anything is written; one that
// would change nothing returns nil (the loop then writes nothing).

// ReleaseError is a release operation refused for what the user asked: it
// says what to do instead, and nothing was written.
type ReleaseError struct{ msg string }

func (e *ReleaseError) Error() string { return e.msg }

func refuse(format string, a ...any) error { return &ReleaseError{fmt.Sprintf(format, a...)} }

// IsRelease reports whether err is a [ReleaseError].
func IsRelease(err error) bool {
	var re *ReleaseError
	return errors.As(err, &re)
}

// noChannel refuses an operation on a channel that has no pointer yet.
func noChannel(what string) error {
	return refuse("the channel has no build yet, so there is nothing to %s; publish one first with `deploy upload` or `deploy promote`", what)
}

// Promote points the channel's stable build at build, for every device:
// a candidate in rollout is dropped and the fallbacks are chosen again for
// the new stable build. A channel that already serves build to everyone
// is left alone; a latest.json that does not verify (nil cur) is replaced.
// A channel without latest.json never reaches the edit: [Publisher.Change]
// refuses it.
func Promote(build manifest.BuildRef) Edit {
	return func(cur *manifest.Latest) (*manifest.Latest, error) {
		if cur == nil {
			return &manifest.Latest{Build: build}, nil
		}
		if cur.Build == build && cur.Candidate == nil {
			return nil, nil
		}
		setStable(cur, build)
		return cur, nil
	}
}

// setStable makes build the stable build of l, with no candidate, keeping
// as fallbacks the builds l served, and those of also, that build does not
// replace for every native version.
func setStable(l *manifest.Latest, build manifest.BuildRef, also ...manifest.BuildRef) {
	served := append([]manifest.BuildRef{l.Build}, l.Fallbacks...)
	if l.Candidate != nil {
		served = append(served, l.Candidate.Build)
	}
	l.Build, l.Candidate, l.Fallbacks = build, nil, Fallbacks(build, append(served, also...))
}

// WideFallbacks says, for a pointer whose stable build has native bounds,
// which devices outside them fall to a fallback with no bound on their
// side: an older build that says it runs on any native version, which is
// rarely what a bound on a newer build means (an app whose native version
// is newer than a build's max_native getting older web code still).
func WideFallbacks(l *manifest.Latest) []string {
	if l == nil {
		return nil
	}
	p := *l
	p.Candidate = nil
	var out []string
	for _, side := range []struct {
		bound, native, where, field string
	}{
		{l.Build.MaxNative, "999999999", "above " + l.Build.MaxNative, "max_native"},
		{l.Build.MinNative, "0", "below " + l.Build.MinNative, "min_native"},
	} {
		if side.bound == "" {
			continue
		}
		sel := p.Select(side.native, "")
		if sel.Reason != manifest.SelectFallback {
			continue
		}
		b := sel.Build
		if (side.field == "max_native" && b.MaxNative == "") || (side.field == "min_native" && b.MinNative == "") {
			out = append(out, fmt.Sprintf("devices on native versions %s get build %d (version %s), which has no %s", side.where, b.Number, b.Version, side.field))
		}
	}
	return out
}

// Fallbacks chooses the fallbacks of a pointer whose stable build is
// stable, from builds it served before: those older than stable, newest
// first, dropping each one whose native range a newer build on the list
// (stable included) already covers whole, and keeping at most
// [manifest.MaxFallbacks]. A stable build without native bounds needs none.
func Fallbacks(stable manifest.BuildRef, served []manifest.BuildRef) []manifest.BuildRef {
	var out []manifest.BuildRef
	for _, b := range byNumberDesc(served) {
		if b.Number >= stable.Number || covered(b, stable, out) {
			continue
		}
		out = append(out, b)
		if len(out) == manifest.MaxFallbacks {
			break
		}
	}
	return out
}

// covered reports whether a build on the list covers b's native range whole.
func covered(b, stable manifest.BuildRef, fallbacks []manifest.BuildRef) bool {
	if contains(stable, b) {
		return true
	}
	for _, f := range fallbacks {
		if f.Number == b.Number || contains(f, b) {
			return true
		}
	}
	return false
}

// contains reports whether a's native range holds all of b's.
func contains(a, b manifest.BuildRef) bool {
	within := func(bound, own string) bool {
		if bound == "" {
			return own == "" // b is open-ended on this side: so must a be
		}
		return manifest.NativeFits(a, bound)
	}
	return within(b.MinNative, a.MinNative) && within(b.MaxNative, a.MaxNative)
}

// byNumberDesc returns builds sorted by decreasing number.
func byNumberDesc(builds []manifest.BuildRef) []manifest.BuildRef {
	out := append([]manifest.BuildRef(nil), builds...)
	for i := 1; i < len(out); i++ {
		for j := i; j > 0 && out[j].Number > out[j-1].Number; j-- {
			out[j], out[j-1] = out[j-1], out[j]
		}
	}
	return out
}

// Rollout offers build to percent of the channel's devices as its
// candidate, the stable build staying for the others. When build is the
// candidate already, only its percentage changes (same rollout id: raising
// it only adds devices); a new build starts a new rollout whose id, made
// from the build and the channel's sequence, draws new cohorts. At 100 the
// rollout completes: build becomes the stable build.
func Rollout(build manifest.BuildRef, percent int64) Edit {
	return func(cur *manifest.Latest) (*manifest.Latest, error) {
		if err := checkPercent(percent); err != nil {
			return nil, err
		}
		if cur == nil {
			return nil, noChannel("roll out against: a first build goes to every device")
		}
		if cur.Build.ID == build.ID && cur.Candidate == nil {
			return nil, refuse("build %d is already the stable build of the channel, on every device", build.Number)
		}
		if percent == 100 {
			setStable(cur, build)
			return cur, nil
		}
		if c := cur.Candidate; c != nil && c.Build.ID == build.ID {
			c.Build, c.Percent = build, percent
			return cur, nil
		}
		cur.Candidate = &manifest.Candidate{Build: build, Percent: percent, Rollout: rolloutID(build, cur.Sequence)}
		return cur, nil
	}
}

// rolloutID names the rollout of build started after the pointer at
// sequence: unique per channel, as a new rollout must draw new cohorts.
func rolloutID(build manifest.BuildRef, sequence int64) string {
	return "b" + strconv.FormatInt(build.Number, 10) + "-s" + strconv.FormatInt(sequence+1, 10)
}

// SetPercent changes the percentage of the channel's candidate; at 100 the
// candidate becomes the stable build.
func SetPercent(percent int64) Edit {
	return func(cur *manifest.Latest) (*manifest.Latest, error) {
		if err := checkPercent(percent); err != nil {
			return nil, err
		}
		c, err := candidateOf(cur)
		if err != nil {
			return nil, err
		}
		return Rollout(c.Build, percent)(cur)
	}
}

// Pause stops (paused true) or resumes offering the channel's candidate,
// which stays in the pointer with its percentage and cohorts.
func Pause(paused bool) Edit {
	return func(cur *manifest.Latest) (*manifest.Latest, error) {
		c, err := candidateOf(cur)
		if err != nil {
			return nil, err
		}
		if c.Paused == paused {
			return nil, nil
		}
		c.Paused = paused
		return cur, nil
	}
}

func candidateOf(cur *manifest.Latest) (*manifest.Candidate, error) {
	switch {
	case cur == nil:
		return nil, noChannel("change")
	case cur.Halted != nil:
		return nil, refuse("the channel's candidate was halted (%s); fix the build and start a new rollout with `deploy rollout app=%s channel=%s build=N percent=P`, or roll back", cur.Halted.Reason, cur.App, cur.Channel)
	case cur.Candidate == nil:
		return nil, refuse("the channel has no rollout in progress; start one with `deploy rollout app=%s channel=%s build=N percent=P`", cur.App, cur.Channel)
	}
	return cur.Candidate, nil
}

func checkPercent(percent int64) error {
	if percent < 0 || percent > 100 {
		return refuse("percent=%d is outside 0 to 100; give the share of devices that get the build, such as percent=10", percent)
	}
	return nil
}

// Rollback undoes the channel's last release. With a candidate in rollout
// (before nil), it drops the candidate, so devices in its cohort go back
// to the stable build. Else it makes the stable build of before, the
// pointer the channel had before its current build ([RollbackTarget]), the
// stable build again, with the fallbacks before had besides those the
// channel serves: devices on native versions that build does not fit get
// back what they got then.
func Rollback(before *manifest.Latest) Edit {
	return func(cur *manifest.Latest) (*manifest.Latest, error) {
		if cur == nil {
			return nil, noChannel("roll back")
		}
		if before == nil {
			if cur.Candidate == nil {
				return nil, refuse("the channel has no rollout in progress; name the build to go back to with to=N")
			}
			cur.Candidate = nil
			return cur, nil
		}
		setStable(cur, before.Build, before.Fallbacks...)
		return cur, nil
	}
}

// RollbackTo makes build the channel's stable build (`deploy rollback
// to=N`), as [Promote] does, on a channel that has a pointer.
func RollbackTo(build manifest.BuildRef) Edit {
	return func(cur *manifest.Latest) (*manifest.Latest, error) {
		if cur == nil {
			return nil, noChannel("roll back")
		}
		return Promote(build)(cur)
	}
}

// RollbackTarget returns the pointer whose stable build the channel served
// before its current one: walking its history (verified pointers, newest
// first, the current one first), the first whose stable build differs from
// the current one. It refuses a channel that never served another build.
func RollbackTarget(chain []*manifest.Latest) (*manifest.Latest, error) {
	if len(chain) == 0 {
		return nil, noChannel("roll back")
	}
	cur := chain[0].Build
	for _, l := range chain[1:] {
		if l.Build.ID != cur.ID {
			return l, nil
		}
	}
	return nil, refuse("the channel has served only build %d in its history, so there is no earlier build to go back to; name one with to=N (see `deploy list builds`)", cur.Number)
}

// Expect makes edit refuse to run on a pointer other than the one at
// sequence, the one a decision was made on: a channel that changed
// meanwhile (another release) is refused rather than changed blindly.
func Expect(sequence int64, edit Edit) Edit {
	return func(cur *manifest.Latest) (*manifest.Latest, error) {
		var got int64
		if cur != nil {
			got = cur.Sequence
		}
		if got != sequence {
			return nil, refuse("the channel changed while this ran (sequence %d, now %d); look at `deploy history` and run the command again", sequence, got)
		}
		return edit(cur)
	}
}

// SetSelfAssign sets whether devices may pick the channel themselves.
func SetSelfAssign(on bool) Edit {
	return func(cur *manifest.Latest) (*manifest.Latest, error) {
		if cur == nil {
			return nil, noChannel("configure")
		}
		if cur.Settings.SelfAssign == on {
			return nil, nil
		}
		cur.Settings.SelfAssign = on
		return cur, nil
	}
}

// Noted makes edit's pointer carry notes (why the channel changed, for
// its history) and a fresh expiry (zero: the loop's default), as every
// change signs a new pointer. It refuses a pointer over [MaxPointerSize].
func Noted(notes string, expires time.Time, edit Edit) Edit {
	return func(cur *manifest.Latest) (*manifest.Latest, error) {
		next, err := edit(cur)
		if next == nil || err != nil {
			return nil, err
		}
		next.Notes, next.Expires = notes, expires
		n, err := pointerSize(next)
		if err != nil {
			return nil, err
		}
		if n > MaxPointerSize {
			return nil, refuse("the channel's latest.json would be about %d bytes, over the %d that leave room for a halt to wrap it; shorten notes", n, MaxPointerSize)
		}
		return next, nil
	}
}

// pointerSize bounds the bytes of l's signed envelope: its payload in
// base64 and [envelopeOverhead].
func pointerSize(l *manifest.Latest) (int, error) {
	payload, err := json.Marshal(l)
	if err != nil {
		return 0, err
	}
	return base64.StdEncoding.EncodedLen(len(payload)) + envelopeOverhead, nil
}

// MaxPointerSize is the most bytes of a latest.json deploy signs: a halt
// wraps the pointer whole, and must stay under [manifest.MaxLatestSize].
const MaxPointerSize = 44 << 10

// envelopeOverhead bounds the bytes of an envelope around its payload: the
// field names, payload type, and one signature with its keyid.
const envelopeOverhead = 512
