package publish_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/cartona/deploy/manifest"
	"github.com/cartona/deploy/publish"
	"github.com/cartona/deploy/store"
)

// native gives ref(n) the native range [min, max].
func native(n int64, min, max string) manifest.BuildRef {
	r := ref(n)
	r.MinNative, r.MaxNative = min, max
	return r
}

func numbers(refs []manifest.BuildRef) []int64 {
	var out []int64
	for _, r := range refs {
		out = append(out, r.Number)
	}
	return out
}

// A fallback without a bound on the side a stable build's bound leaves
// is named: devices there get an older build that claims every native
// version.
func TestWideFallbacks(t *testing.T) {
	for _, tc := range []struct {
		name      string
		stable    manifest.BuildRef
		fallbacks []manifest.BuildRef
		want      string
	}{
		{"unbounded stable", ref(5), []manifest.BuildRef{ref(4)}, "[]"},
		{"newer natives fall to an unbounded build", native(5, "", "2.9.9"), []manifest.BuildRef{ref(4)},
			"[devices on native versions above 2.9.9 get build 4 (version 4), which has no max_native]"},
		{"older natives fall to an unbounded build", native(5, "2.0", ""), []manifest.BuildRef{ref(4)},
			"[devices on native versions below 2.0 get build 4 (version 4), which has no min_native]"},
		{"a fallback bounded on that side", native(5, "", "2.9.9"), []manifest.BuildRef{native(4, "3.0", "3.9")}, "[]"},
		{"an older-natives fallback with no min", native(5, "2.0", ""), []manifest.BuildRef{native(4, "", "1.9")}, "[devices on native versions below 2.0 get build 4 (version 4), which has no min_native]"},
		{"no fallback at all", native(5, "2.0", "2.9"), nil, "[]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := &manifest.Latest{App: "retailer", Channel: "production", Build: tc.stable, Fallbacks: tc.fallbacks}
			if got := fmt.Sprint(publish.WideFallbacks(l)); got != tc.want {
				t.Fatalf("WideFallbacks = %s, want %s", got, tc.want)
			}
		})
	}
}

func TestFallbacks(t *testing.T) {
	for _, tc := range []struct {
		name   string
		stable manifest.BuildRef
		served []manifest.BuildRef
		want   []int64
	}{
		{"an unbounded stable build needs none", ref(5), []manifest.BuildRef{ref(4), native(3, "1.0", "")}, nil},
		{"older builds for older natives, newest first", native(5, "3.0", ""), []manifest.BuildRef{native(3, "1.0", ""), ref(4)}, []int64{4}},
		{"a bounded older build is kept until an unbounded one", native(5, "3.0", ""), []manifest.BuildRef{native(4, "2.0", ""), ref(2), native(3, "2.5", "")}, []int64{4, 2}},
		{"newer builds are never fallbacks", native(3, "2.0", ""), []manifest.BuildRef{ref(4), native(2, "1.0", "")}, []int64{2}},
		{"a range the stable covers is dropped", native(5, "1.0", ""), []manifest.BuildRef{native(4, "2.0", "3.0")}, nil},
		{"a range wider below is kept", native(5, "2.0", ""), []manifest.BuildRef{native(4, "1.0", "3.0")}, []int64{4}},
		{"a max-bounded stable keeps one for newer natives", native(5, "", "2.9"), []manifest.BuildRef{native(4, "3.0", "")}, []int64{4}},
		{"duplicates count once", native(5, "3.0", ""), []manifest.BuildRef{ref(4), ref(4)}, []int64{4}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := numbers(publish.Fallbacks(tc.stable, tc.served))
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Fatalf("fallbacks = %v, want %v", got, tc.want)
			}
		})
	}
	var many []manifest.BuildRef
	for n := int64(1); n < 20; n++ {
		v := fmt.Sprintf("1.%d", n)
		many = append(many, native(n, v, v))
	}
	if got := publish.Fallbacks(native(30, "9.0", ""), many); len(got) != manifest.MaxFallbacks || got[0].Number != 19 {
		t.Fatalf("capped fallbacks = %v, want the newest %d", numbers(got), manifest.MaxFallbacks)
	}
}

// pointer at sequence 4 with stable build 2 and, if cand > 0, candidate
// cand at 10 percent.
func at(cand int64) *manifest.Latest {
	l := &manifest.Latest{App: "retailer", Channel: "production", Sequence: 4, Build: ref(2)}
	if cand > 0 {
		l.Candidate = &manifest.Candidate{Build: ref(cand), Percent: 10, Rollout: "b3-s3"}
	}
	return l
}

func TestReleaseEdits(t *testing.T) {
	type want struct {
		stable, cand, percent int64
		paused, none          bool // none: the edit writes nothing
		err                   string
	}
	for _, tc := range []struct {
		name string
		edit publish.Edit
		cur  *manifest.Latest
		want want
	}{
		{"promote over a pointer that does not verify", publish.Promote(ref(3)), nil, want{stable: 3}},
		{"promote drops a candidate", publish.Promote(ref(4)), at(3), want{stable: 4}},
		{"promote of the same build changes nothing", publish.Promote(ref(2)), at(0), want{none: true}},
		{"rollout starts a candidate", publish.Rollout(ref(3), 10), at(0), want{stable: 2, cand: 3, percent: 10}},
		{"rollout raises its candidate", publish.Rollout(ref(3), 50), at(3), want{stable: 2, cand: 3, percent: 50}},
		{"rollout at 100 completes", publish.Rollout(ref(3), 100), at(3), want{stable: 3}},
		{"rollout needs a stable build", publish.Rollout(ref(3), 10), nil, want{err: "no build yet"}},
		{"rollout of the stable build", publish.Rollout(ref(2), 10), at(0), want{err: "already the stable build"}},
		{"percent over 100", publish.Rollout(ref(3), 101), at(0), want{err: "outside 0 to 100"}},
		{"percent below 0", publish.SetPercent(-1), at(3), want{err: "outside 0 to 100"}},
		{"set percent", publish.SetPercent(50), at(3), want{stable: 2, cand: 3, percent: 50}},
		{"set percent without a rollout", publish.SetPercent(50), at(0), want{err: "no rollout in progress"}},
		{"set percent 100 completes", publish.SetPercent(100), at(3), want{stable: 3}},
		{"pause", publish.Pause(true), at(3), want{stable: 2, cand: 3, percent: 10, paused: true}},
		{"resume a running rollout changes nothing", publish.Pause(false), at(3), want{none: true}},
		{"pause without a rollout", publish.Pause(true), at(0), want{err: "no rollout in progress"}},
		{"resume without a rollout", publish.Pause(false), at(0), want{err: "no rollout in progress"}},
		{"set percent 100 without a rollout", publish.SetPercent(100), at(0), want{err: "no rollout in progress"}},
		{"rollback drops the candidate", publish.Rollback(nil), at(3), want{stable: 2}},
		{"rollback to a build", publish.RollbackTo(ref(1)), at(0), want{stable: 1}},
		{"rollback to the pointer before", publish.Rollback(&manifest.Latest{Build: ref(1)}), at(0), want{stable: 1}},
		{"rollback without target or candidate", publish.Rollback(nil), at(0), want{err: "to=N"}},
		{"rollback of an empty channel", publish.Rollback(nil), nil, want{err: "no build yet"}},
		{"expect the sequence seen", publish.Expect(4, publish.Promote(ref(5))), at(0), want{stable: 5}},
		{"a channel that changed meanwhile", publish.Expect(3, publish.Promote(ref(5))), at(0), want{err: "changed while this ran"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.edit(tc.cur)
			switch {
			case tc.want.err != "":
				if err == nil || !strings.Contains(err.Error(), tc.want.err) || !publish.IsRelease(err) {
					t.Fatalf("err = %v, want a release error with %q", err, tc.want.err)
				}
				return
			case err != nil:
				t.Fatal(err)
			case tc.want.none:
				if got != nil {
					t.Fatalf("wrote %+v, want nothing", got)
				}
				return
			case got == nil:
				t.Fatal("wrote nothing")
			}
			var cand, percent int64
			var paused bool
			if c := got.Candidate; c != nil {
				cand, percent, paused = c.Build.Number, c.Percent, c.Paused
			}
			if got.Build.Number != tc.want.stable || cand != tc.want.cand || percent != tc.want.percent || paused != tc.want.paused {
				t.Fatalf("stable %d, candidate %d at %d%% paused %v; want %+v", got.Build.Number, cand, percent, paused, tc.want)
			}
		})
	}
}

func TestRolloutKeepsItsCohortsAndANewOneDrawsNew(t *testing.T) {
	l, err := publish.Rollout(ref(3), 10)(at(0))
	if err != nil {
		t.Fatal(err)
	}
	id := l.Candidate.Rollout
	if l, err = publish.Rollout(ref(3), 50)(l); err != nil || l.Candidate.Rollout != id {
		t.Fatalf("raised: rollout %q, err %v; want %q kept", l.Candidate.Rollout, err, id)
	}
	l.Sequence = 9
	if l, err = publish.Rollout(ref(4), 10)(l); err != nil || l.Candidate.Rollout == id {
		t.Fatalf("a new build kept rollout id %q (err %v)", id, err)
	}
}

// A rollback to the build served before brings back the fallbacks it had:
// devices on native versions it does not fit get what they got then, not
// nothing because the release rolled back had no native bounds.
func TestRollbackBringsBackFallbacks(t *testing.T) {
	f := newFixture(t, fileStore(t))
	ctx := context.Background()
	p := f.publisher()
	two := f.stored(t, 2)
	two.MinNative = "2.0"
	for _, b := range []manifest.BuildRef{f.stored(t, 1), two, f.stored(t, 3)} {
		if _, _, err := p.UpdatePointer(ctx, "retailer", "production", publish.Promote(b)); err != nil {
			t.Fatal(err)
		}
	}
	before := f.rollbackTarget(t, "production")
	if before.Build.Number != 2 || len(before.Fallbacks) != 1 {
		t.Fatalf("rollback target %+v; want build 2 with fallback 1", before)
	}
	res, err := p.Change(ctx, "retailer", "production", publish.Rollback(before), false)
	if err != nil {
		t.Fatal(err)
	}
	if res.After.Build.Number != 2 || fmt.Sprint(numbers(res.After.Fallbacks)) != "[1]" {
		t.Fatalf("after the rollback: %+v; want build 2 with fallback 1", res.After)
	}
	if sel := res.After.Select("1.5", "device"); sel.Build == nil || sel.Build.Number != 1 {
		t.Fatalf("a device on native 1.5 gets %+v, want build 1", sel)
	}
}

func TestRollbackTarget(t *testing.T) {
	chain := []*manifest.Latest{{Build: ref(3)}, {Build: ref(3), Candidate: &manifest.Candidate{Build: ref(4)}}, {Build: ref(2)}, {Build: ref(1)}}
	if got, err := publish.RollbackTarget(chain); err != nil || got != chain[2] {
		t.Fatalf("target = %+v, %v; want the pointer of build 2", got, err)
	}
	if _, err := publish.RollbackTarget(chain[:2]); err == nil || !strings.Contains(err.Error(), "no earlier build") {
		t.Fatalf("one build only: err = %v", err)
	}
	if _, err := publish.RollbackTarget(nil); err == nil {
		t.Fatal("an empty history has a target")
	}
}

func TestParseBuild(t *testing.T) {
	for in, want := range map[string]int64{"3": 3, "retailer-3": 3} {
		if n, err := publish.ParseBuild("retailer", in); err != nil || n != want {
			t.Errorf("ParseBuild(%q) = %d, %v", in, n, err)
		}
	}
	for in, msg := range map[string]string{"other-3": "build of app other", "x": "is not a build", "0": "is not a build", "-1": "is not a build"} {
		if _, err := publish.ParseBuild("retailer", in); err == nil || !strings.Contains(err.Error(), msg) || !errors.Is(err, publish.ErrInvalid) {
			t.Errorf("ParseBuild(%q): err = %v, want %q, an invalid value", in, err, msg)
		}
	}
}

func TestNotedRefusesAPointerAHaltCouldNotWrap(t *testing.T) {
	big := strings.Repeat("x", publish.MaxNotesLen)
	edit := publish.Noted(big, time.Time{}, publish.Promote(ref(3)))
	cur := at(0)
	for i := range cur.Fallbacks {
		cur.Fallbacks[i].Version = big
	}
	if _, err := edit(cur); err != nil {
		t.Fatalf("notes at their limit: %v", err)
	}
	cur = at(0)
	cur.Build.Version = strings.Repeat("v", 30<<10)
	if _, err := publish.Noted(big, time.Time{}, publish.SetSelfAssign(true))(cur); err == nil || !strings.Contains(err.Error(), "room for a halt") {
		t.Fatalf("an oversized pointer: err = %v", err)
	}
}

// Issue 8: promote, rollout (percent, pause, resume), rollback and
// channel set change only a channel that exists; on one without
// latest.json they write nothing and name `deploy channel create`. Only
// CreateChannel (and an upload) start a channel.
func TestReleaseCommandsRefuseAMissingChannel(t *testing.T) {
	eachStore(t, func(t *testing.T, newStore func(t *testing.T) store.Store) {
		f := newFixture(t, newStore(t))
		ctx := context.Background()
		f.upload(t, "production", version(1))
		f.upload(t, "beta", version(2))
		b1, b2 := f.pointer(t, "production").Build, f.pointer(t, "beta").Build
		before := f.keys(t)
		for _, tc := range []struct {
			name string
			edit publish.Edit
		}{
			{"promote", publish.Promote(b2)},
			{"promote with a rollout", publish.Rollout(b2, 10)},
			{"rollout percent", publish.SetPercent(50)},
			{"rollout pause", publish.Pause(true)},
			{"rollout resume", publish.Pause(false)},
			{"rollback", publish.Rollback(nil)},
			{"rollback to", publish.RollbackTo(b1)},
			{"channel set", publish.SetSelfAssign(true)},
		} {
			for _, dryRun := range []bool{true, false} {
				res, err := f.publisher().Change(ctx, "retailer", "prod", publish.Noted("typo", time.Time{}, tc.edit), dryRun)
				want := "app retailer has no channel prod: release commands change only a channel that exists, and nothing was written; start it with\n  deploy channel create app=retailer channel=prod build=N (or from=CHANNEL)"
				if res != nil || err == nil || err.Error() != want || !publish.IsRelease(err) {
					t.Fatalf("%s (dry run %v) on a missing channel: %+v, %v", tc.name, dryRun, res, err)
				}
			}
		}
		if after := f.keys(t); strings.Join(after, " ") != strings.Join(before, " ") {
			t.Fatalf("refused release commands wrote: %v, was %v", after, before)
		}
		// channel create starts it; then promote moves it.
		if _, err := f.publisher().CreateChannel(ctx, "retailer", "prod", b1, manifest.Settings{}, "", false); err != nil {
			t.Fatal(err)
		}
		if res, err := f.publisher().Change(ctx, "retailer", "prod", publish.Promote(b2), false); err != nil || !res.Written || res.After.Sequence != 2 {
			t.Fatalf("promote after channel create: %+v, %v", res, err)
		}
	})
}

func TestChangeDryRunWritesNothing(t *testing.T) {
	f := newFixture(t, fileStore(t))
	ctx := context.Background()
	if _, _, err := f.publisher().UpdatePointer(ctx, "retailer", "production", publish.Promote(ref(1))); err != nil {
		t.Fatal(err)
	}
	b2 := f.stored(t, 2)
	before := f.keys(t)
	res, err := f.publisher().Change(ctx, "retailer", "production", publish.Noted("try", time.Time{}, publish.Promote(b2)), true)
	if err != nil || res.Written || res.After.Build.Number != 2 || res.After.Sequence != 2 || res.Before.Build.Number != 1 || len(res.Keys) != 2 {
		t.Fatalf("dry run = %+v, %v", res, err)
	}
	if after := f.keys(t); strings.Join(after, " ") != strings.Join(before, " ") {
		t.Fatalf("a dry run wrote: %v, was %v", after, before)
	}
	res, err = f.publisher().Change(ctx, "retailer", "production", publish.Noted("go", time.Time{}, publish.Promote(b2)), false)
	if err != nil || !res.Written || res.After.Sequence != 2 || f.pointer(t, "production").Notes != "go" {
		t.Fatalf("change = %+v, %v", res, err)
	}
	f.verifyHistory(t, "production", 2)
}

// halter returns a new key that the ACL grants can_halt on retailer, and
// nothing else, as a tracker's halt key.
func (f *fixture) halter(t *testing.T) ed25519.PrivateKey {
	t.Helper()
	key, err := manifest.GenerateKey(t.TempDir() + "/tracker.key")
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := publish.UpdateACL(context.Background(), f.store, f.root, func(a *manifest.ACL) (bool, error) {
		a.Users = append(a.Users, manifest.User{Name: "tracker", Keys: []string{manifest.FormatPublicKey(manifest.Public(key))}, Grants: map[string]manifest.Grant{"retailer": {CanHalt: true}}})
		return true, nil
	}); err != nil {
		t.Fatal(err)
	}
	return key
}

// halt writes, with a new can_halt key, a halt of the channel's
// latest.json, as a tracker does.
func (f *fixture) halt(t *testing.T, channel, reason string) {
	t.Helper()
	f.haltWith(t, f.halter(t), channel, reason)
}

// haltWith writes, signed with key, a halt of the channel's latest.json.
func (f *fixture) haltWith(t *testing.T, key ed25519.PrivateKey, channel, reason string) {
	t.Helper()
	ctx := context.Background()
	data := f.get(t, manifest.LatestKey("retailer", channel))
	env, err := manifest.ParseEnvelope(data, manifest.TypeLatest, manifest.MaxLatestSize)
	if err != nil {
		t.Fatal(err)
	}
	cur := f.pointer(t, channel)
	h := manifest.Halt{App: "retailer", Channel: channel, Sequence: cur.Sequence + 1, Issued: time.Now().UTC().Truncate(time.Second), Reason: reason, Pointer: *env, Previous: manifest.LinkTo(cur.Sequence, data)}
	signed, err := manifest.Sign(manifest.TypeHalt, h, key)
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{manifest.HistoryKey("retailer", channel, h.Sequence), manifest.LatestKey("retailer", channel)} {
		if _, err := f.store.Put(ctx, key, bytes.NewReader(signed.Marshal()), store.PutOptions{}); err != nil {
			t.Fatal(err)
		}
	}
}

// A key granted only can_halt (a tracker's halt key) can halt a rollout,
// and nothing else: deploy refuses it every upload, promote, rollout,
// rollback and channel change, writing nothing, and a pointer it signs
// itself, bare or inside a halt, verifies for no device.
func TestHaltKeyCanOnlyHalt(t *testing.T) {
	eachStore(t, func(t *testing.T, newStore func(t *testing.T) store.Store) {
		f := newFixture(t, newStore(t))
		ctx := context.Background()
		f.upload(t, "production", version(1))
		if _, err := f.publisher().Upload(ctx, publish.Request{App: "retailer", Dir: writeTree(t, version(2)), Rollout: 10}); err != nil {
			t.Fatal(err)
		}
		cur := f.pointer(t, "production")
		stable, cand := cur.Build, cur.Candidate.Build
		key := f.halter(t)
		hp := &publish.Publisher{Store: f.store, Key: key, Trust: f.trust}
		before := f.keys(t)

		notGranted := func(what string, err error) {
			t.Helper()
			var ng *publish.NotGrantedError
			if !errors.As(err, &ng) || ng.User != "tracker" || ng.App != "retailer" {
				t.Fatalf("%s with the halt key: err = %v, want NotGrantedError for user tracker", what, err)
			}
		}
		_, err := hp.Upload(ctx, publish.Request{App: "retailer", Dir: writeTree(t, version(3))})
		notGranted("upload", err)
		_, err = hp.Upload(ctx, publish.Request{App: "retailer", Channel: "beta", Dir: writeTree(t, version(3))})
		notGranted("upload to a new channel", err)
		for _, tc := range []struct {
			name string
			edit publish.Edit
		}{
			{"promote the candidate", publish.Promote(cand)},
			{"complete the rollout", publish.SetPercent(100)},
			{"raise the rollout", publish.SetPercent(50)},
			{"resume", publish.Pause(false)},
			{"roll back", publish.Rollback(nil)},
			{"channel set", publish.SetSelfAssign(true)},
		} {
			for _, dryRun := range []bool{true, false} {
				_, err := hp.Change(ctx, "retailer", "production", tc.edit, dryRun)
				notGranted(tc.name, err)
			}
		}
		_, err = hp.CreateChannel(ctx, "retailer", "qa", cand, manifest.Settings{SelfAssign: true}, "", false)
		notGranted("channel create", err)
		_, err = hp.DeleteChannel(ctx, "retailer", "production", false)
		notGranted("channel delete", err)
		if after := f.keys(t); strings.Join(after, " ") != strings.Join(before, " ") {
			t.Fatalf("the halt key wrote: %v, was %v", after, before)
		}

		// Signed by the halt key itself, a pointer that moves the channel
		// verifies for no device: bare, or wrapped in a halt.
		acl := f.get(t, manifest.ACLKey)
		exp := manifest.Expect{App: "retailer", Channel: "production", Now: time.Now()}
		moved := *cur
		moved.Sequence, moved.Build, moved.Candidate = cur.Sequence+1, cand, nil
		bare, err := manifest.Sign(manifest.TypeLatest, moved, key)
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := f.trust.VerifyLatest(acl, bare.Marshal(), exp); manifest.RuleOf(err) != manifest.RuleNotGranted {
			t.Fatalf("a pointer signed by the halt key: err = %v, want %s", err, manifest.RuleNotGranted)
		}
		moved.Sequence = cur.Sequence
		inner, err := manifest.Sign(manifest.TypeLatest, moved, key)
		if err != nil {
			t.Fatal(err)
		}
		h := manifest.Halt{App: "retailer", Channel: "production", Sequence: cur.Sequence + 1, Issued: time.Now().UTC().Truncate(time.Second), Reason: "x", Pointer: *inner, Previous: manifest.LinkTo(cur.Sequence, inner.Marshal())}
		wrapped, err := manifest.Sign(manifest.TypeHalt, h, key)
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := f.trust.VerifyLatest(acl, wrapped.Marshal(), exp); manifest.RuleOf(err) != manifest.RuleNotGranted {
			t.Fatalf("a halt by the halt key of a pointer it signed: err = %v, want %s", err, manifest.RuleNotGranted)
		}

		// What it may do: halt the rollout. Devices then get the stable
		// build only.
		f.haltWith(t, key, "production", "set_fail on 9 of 40 devices")
		l := f.pointer(t, "production")
		if l.Halted == nil || l.Candidate != nil || l.Build != stable || l.Sequence != cur.Sequence+1 {
			t.Fatalf("after the halt: %+v, want stable build %d only, halted", l, stable.Number)
		}
	})
}

// haltedRollout is a production channel whose rollout of build 2 over
// build 1 was halted.
func haltedRollout(t *testing.T) (*fixture, *publish.Publisher) {
	f := newFixture(t, fileStore(t))
	ctx := context.Background()
	p := f.publisher()
	for _, edit := range []publish.Edit{publish.Promote(ref(1)), publish.Rollout(ref(2), 10)} {
		if _, _, err := p.UpdatePointer(ctx, "retailer", "production", edit); err != nil {
			t.Fatal(err)
		}
	}
	f.halt(t, "production", "set_fail on 9 of 40 devices")
	return f, p
}

func TestReleaseAfterAHalt(t *testing.T) {
	f, p := haltedRollout(t)
	ctx := context.Background()
	if _, err := p.Change(ctx, "retailer", "production", publish.Pause(false), false); err == nil || !strings.Contains(err.Error(), "halted (set_fail on 9 of 40 devices)") {
		t.Fatalf("resuming a halted rollout: err = %v", err)
	}
	acl, _, err := publish.ReadACL(ctx, f.store, f.trust)
	if err != nil {
		t.Fatal(err)
	}
	h, err := publish.ReadHistory(ctx, f.store, acl, "retailer", "production")
	if err != nil || h.Gap != "" || len(h.Chain) != 3 || h.Chain[0].Halted == nil || h.Chain[0].Candidate != nil {
		t.Fatalf("history with a halt: %+v, %v", h, err)
	}
	// The next pointer follows the halt: sequence halt+1, linked to it.
	res, err := p.Change(ctx, "retailer", "production", publish.Promote(f.stored(t, 3)), false)
	if err != nil || res.After.Sequence != 4 || res.After.Previous.Sequence != 3 {
		t.Fatalf("after a halt: %+v, %v", res, err)
	}
	f.verifyHistory(t, "production", 4)
	h, err = publish.ReadHistory(ctx, f.store, acl, "retailer", "production")
	if err != nil || h.Gap != "" {
		t.Fatalf("history: gap %q, %v", h.Gap, err)
	}
	if target, err := publish.RollbackTarget(h.Chain); err != nil || target.Build.Number != 1 {
		t.Fatalf("rollback after a halt goes to %+v (%v), want build 1", target, err)
	}
}

// An edit of the pointer a halt wraps (a new rollout) follows the halt
// in one write, and says it wrote: it once carried the halt's link along,
// lost its own claim as an orphan, and then found its own pointer there
// and reported nothing written.
func TestRolloutAfterAHaltSaysItWrote(t *testing.T) {
	f, p := haltedRollout(t)
	ctx := context.Background()
	res, err := p.Change(ctx, "retailer", "production", publish.Rollout(f.stored(t, 3), 20), false)
	if err != nil || !res.Written || res.After.Sequence != 4 || res.After.Previous.Sequence != 3 || res.After.Candidate == nil || res.After.Candidate.Build.Number != 3 {
		t.Fatalf("a rollout after a halt: %+v, %v", res, err)
	}
	f.verifyHistory(t, "production", 4)
}

func TestHistoryReportsAGap(t *testing.T) {
	f := newFixture(t, fileStore(t))
	ctx := context.Background()
	for n := int64(1); n <= 3; n++ {
		if _, _, err := f.publisher().UpdatePointer(ctx, "retailer", "beta", publish.Promote(ref(n))); err != nil {
			t.Fatal(err)
		}
	}
	acl, _, err := publish.ReadACL(ctx, f.store, f.trust)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.store.Delete(ctx, manifest.HistoryKey("retailer", "beta", 2)); err != nil {
		t.Fatal(err)
	}
	h, err := publish.ReadHistory(ctx, f.store, acl, "retailer", "beta")
	if err != nil || !strings.Contains(h.Gap, "sequence 3 links to sequence 2, which is missing") || len(h.Chain) != 1 || h.Entries[1].Served {
		t.Fatalf("a missing entry: gap %q, chain %d, %v", h.Gap, len(h.Chain), err)
	}
}

func TestHistoryMarksAnOrphanAsNeverServed(t *testing.T) {
	f := newFixture(t, fileStore(t))
	ctx := context.Background()
	if _, _, err := f.publisher().UpdatePointer(ctx, "retailer", "beta", publish.Promote(ref(1))); err != nil {
		t.Fatal(err)
	}
	// An entry at sequence 2 that links elsewhere: an orphan, passed over.
	orphan := *f.pointer(t, "beta")
	orphan.Sequence, orphan.Build, orphan.Previous = 2, ref(9), &manifest.Link{Sequence: 1, SHA256: strings.Repeat("0", 64)}
	env, err := manifest.Sign(manifest.TypeLatest, orphan, f.user)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.store.Put(ctx, manifest.HistoryKey("retailer", "beta", 2), bytes.NewReader(env.Marshal()), store.PutOptions{CreateOnly: true}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := f.publisher().UpdatePointer(ctx, "retailer", "beta", publish.Promote(ref(3))); err != nil {
		t.Fatal(err)
	}
	acl, _, err := publish.ReadACL(ctx, f.store, f.trust)
	if err != nil {
		t.Fatal(err)
	}
	h, err := publish.ReadHistory(ctx, f.store, acl, "retailer", "beta")
	if err != nil || h.Gap != "" || len(h.Entries) != 3 || len(h.Chain) != 2 {
		t.Fatalf("history: %+v, %v", h, err)
	}
	served := fmt.Sprint(h.Entries[0].Served, h.Entries[1].Served, h.Entries[2].Served)
	if served != "true false true" || h.Entries[0].Sequence != 3 {
		t.Fatalf("served (3, 2, 1) = %s, want the orphan at 2 not served", served)
	}
}

func TestExpectRefusesAChannelChangedMeanwhile(t *testing.T) {
	f := newFixture(t, fileStore(t))
	ctx := context.Background()
	p := f.publisher()
	for n := int64(1); n <= 2; n++ {
		if _, _, err := p.UpdatePointer(ctx, "retailer", "production", publish.Promote(ref(n))); err != nil {
			t.Fatal(err)
		}
	}
	// A rollback decided at sequence 2; another release lands first.
	decided := publish.Expect(2, publish.RollbackTo(ref(1)))
	if _, _, err := p.UpdatePointer(ctx, "retailer", "production", publish.Promote(ref(3))); err != nil {
		t.Fatal(err)
	}
	_, err := p.Change(ctx, "retailer", "production", decided, false)
	if err == nil || !strings.Contains(err.Error(), "changed while this ran (sequence 2, now 3)") {
		t.Fatalf("err = %v", err)
	}
	if l := f.pointer(t, "production"); l.Sequence != 3 || l.Build.Number != 3 {
		t.Fatalf("the refused rollback wrote: %+v", l)
	}
}
