package cli

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/cartona/deploy/manifest"
	"github.com/cartona/deploy/publish"
	"github.com/cartona/deploy/store"
)

// releaseOptions are the parameters every command that changes a channel
// shares.
type releaseOptions struct {
	*env
	storeOptions
	App          string `param:"app,required"`
	Notes        string `param:"notes"`
	Distribution string `param:"distribution"`
	DryRun       bool   `param:"dry_run"`
	JSON         bool   `param:"json"`
}

const releaseUses = "store root_key key_file"

// publisher opens the store, which must exist, with the user's key.
func (o *releaseOptions) publisher(ctx context.Context) (*publish.Publisher, error) {
	if err := manifest.CheckName("app", o.App); err != nil {
		return nil, usageError{err}
	}
	if err := publish.CheckNotes(o.Notes); err != nil {
		return nil, usageError{err}
	}
	st, err := o.store(ctx)
	if err != nil {
		return nil, err
	}
	key, err := o.userKey(false, o.io.Err)
	if err != nil {
		return nil, err
	}
	return o.newPublisher(ctx, st, key, o.Distribution)
}

// newPublisher is a publisher on st signing with key, purging CloudFront
// distribution if one is named.
func (e *env) newPublisher(ctx context.Context, st store.Store, key ed25519.PrivateKey, distribution string) (*publish.Publisher, error) {
	trust, err := e.pinned()
	if err != nil {
		return nil, err
	}
	log := e.log()
	p := &publish.Publisher{Store: st, Key: key, Trust: trust, Waiting: func(why string) { log.Warn().Msg(why) }}
	if distribution != "" {
		if p.Invalidator, err = invalidator(ctx, distribution); err != nil {
			return nil, err
		}
	}
	return p, nil
}

// change runs edit on the channel and reports what it did.
func (o *releaseOptions) change(ctx context.Context, p *publish.Publisher, channel string, edit publish.Edit) error {
	res, err := p.Change(ctx, o.App, channel, publish.Noted(o.Notes, time.Time{}, edit), o.DryRun)
	if res == nil {
		return err
	}
	return o.changed(res, err)
}

// changed records the sequence a change signed as this user's floor for
// the channel (see seen), then prints the result; err, if any, came after
// the main step (the CDN purge).
func (o *releaseOptions) changed(res *publish.ChangeResult, err error) error {
	if res.Written {
		o.rememberSigned(o.URL(), res.App, res.Channel, res.After.Sequence)
	}
	return o.printChange(res, err)
}

// printChange prints a change's result; err, if any, came after the main
// step (the CDN purge).
func (o *releaseOptions) printChange(res *publish.ChangeResult, err error) error {
	if o.JSON {
		if err == nil {
			return writeJSON(o.io.Out, res)
		}
		return partial(err, res)
	}
	w := o.io.Out
	switch {
	case res.DryRun && len(res.Keys) > 0:
		fmt.Fprintf(w, "dry run: would sign %s %s sequence %d: %s\n", res.App, res.Channel, res.After.Sequence, describe(res.After))
		for _, k := range res.Keys {
			fmt.Fprintf(w, "  would write %s\n", k)
		}
		fmt.Fprintln(w, "nothing written")
	case len(res.Keys) == 0:
		fmt.Fprintf(w, "%s %s already serves %s: nothing written\n", res.App, res.Channel, describe(res.After))
	default:
		fmt.Fprintf(w, "%s %s now serves %s (sequence %d)\n", res.App, res.Channel, describe(res.After), res.After.Sequence)
	}
	return partial(err, res)
}

// describe says in a line what a pointer offers.
func describe(l *manifest.Latest) string {
	if l == nil {
		return "nothing"
	}
	s := "build " + buildName(l.Build)
	if c := l.Candidate; c != nil {
		s = fmt.Sprintf("%s, and build %s to %d%% of devices (rollout %s", s, buildName(c.Build), c.Percent, c.Rollout)
		if c.Paused {
			s += ", paused"
		}
		s += ")"
	} else {
		s += " to every device"
	}
	if l.Halted != nil {
		s += "; candidate halted: " + l.Halted.Reason
	}
	if len(l.Fallbacks) > 0 {
		var ns []string
		for _, f := range l.Fallbacks {
			ns = append(ns, buildName(f))
		}
		s += "; for native versions outside its range: " + strings.Join(ns, ", ")
	}
	return s
}

// buildName is "3 (version 0.0.0-build.3, native >= 2.0)".
func buildName(b manifest.BuildRef) string {
	s := fmt.Sprintf("%d (version %s", b.Number, b.Version)
	switch {
	case b.MinNative != "" && b.MaxNative != "":
		s += ", native " + b.MinNative + " to " + b.MaxNative
	case b.MinNative != "":
		s += ", native >= " + b.MinNative
	case b.MaxNative != "":
		s += ", native <= " + b.MaxNative
	}
	return s + ")"
}

// buildRef reads build (a number or id) of the app, verified, with the
// native bounds overridden where given.
func buildRef(ctx context.Context, p *publish.Publisher, app, build, minNative, maxNative string) (manifest.BuildRef, error) {
	n, err := publish.ParseBuild(app, build)
	if err != nil {
		return manifest.BuildRef{}, usageError{err}
	}
	b, err := p.ReadBuild(ctx, app, n)
	if err != nil {
		return manifest.BuildRef{}, err
	}
	return withNative(b.BuildRef, minNative, maxNative)
}

// withNative overrides ref's native bounds with those given.
func withNative(ref manifest.BuildRef, minNative, maxNative string) (manifest.BuildRef, error) {
	if minNative != "" {
		ref.MinNative = minNative
	}
	if maxNative != "" {
		ref.MaxNative = maxNative
	}
	if err := publish.CheckNativeRange(ref.MinNative, ref.MaxNative); err != nil {
		return manifest.BuildRef{}, usageError{err}
	}
	return ref, nil
}

// parsePercent reads a percentage parameter.
func parsePercent(name, s string) (int64, error) {
	n, err := strconv.ParseInt(strings.TrimSuffix(s, "%"), 10, 64)
	if err != nil || n < 0 || n > 100 {
		return 0, usageError{fmt.Errorf("%s=%q is not a percentage: give a whole number from 0 to 100, such as %s=10", name, s, name)}
	}
	return n, nil
}

// parseRollout reads the rollout= of an upload or a promote: 1 to 99, or
// 0 when it is not given.
func parseRollout(s string) (int64, error) {
	if s == "" {
		return 0, nil
	}
	n, err := strconv.ParseInt(strings.TrimSuffix(s, "%"), 10, 64)
	if err != nil || n < 1 || n > 99 {
		return 0, usageError{fmt.Errorf("rollout=%q: give the percentage of devices that get the build first, 1 to 99, or leave rollout out to release it to every device", s)}
	}
	return n, nil
}

// oneOf refuses a command given both or neither of two parameters that
// name the same thing, such as from= and build=.
func oneOf(what, a, aVal, b, bVal string) error {
	switch {
	case aVal == "" && bVal == "":
		return usageError{fmt.Errorf("name %s: %s or %s", what, a, b)}
	case aVal != "" && bVal != "":
		return usageError{fmt.Errorf("name %s with %s or with %s, not both", what, a, b)}
	}
	return nil
}

type promoteOptions struct {
	releaseOptions
	From      string `param:"from"`
	To        string `param:"to,required"`
	Build     string `param:"build"`
	MinNative string `param:"min_native"`
	MaxNative string `param:"max_native"`
	Rollout   string `param:"rollout"`
}

// NewCmdPromote returns `deploy promote`.
func NewCmdPromote(e *env) *cobra.Command {
	return newCommand(e, &cobra.Command{
		Use:   "promote app=NAME from=CHANNEL|build=N to=CHANNEL",
		Short: "Point a channel at a build that already exists (beta to production)",
		Long: `Point a channel at a build that already exists, such as the one a beta
channel serves, without uploading anything: a new signed latest.json with a
higher sequence. The build's record must verify. rollout=P offers it to P
percent of the channel's devices first; min_native/max_native change the
native versions it is offered to on this channel.

The channel to= must exist: promote never starts one, so a mistyped name
writes nothing. The first production release is
  deploy channel create app=NAME channel=production from=beta`,
		Example:     "  deploy promote app=retailer from=beta to=production\n  deploy promote app=retailer build=12 to=production rollout=10 notes=\"checkout fix\"",
		Annotations: uses(releaseUses),
	}, &promoteOptions{releaseOptions: releaseOptions{env: e}}, runPromote)
}

func runPromote(ctx context.Context, o *promoteOptions) error {
	if err := oneOf("what to promote", "from=CHANNEL (its stable build)", o.From, "build=N", o.Build); err != nil {
		return err
	}
	percent, err := parseRollout(o.Rollout)
	if err != nil {
		return err
	}
	p, err := o.publisher(ctx)
	if err != nil {
		return err
	}
	ref, err := o.source(ctx, p)
	if err != nil {
		return err
	}
	edit := publish.Promote(ref)
	if percent > 0 {
		edit = publish.Rollout(ref, percent)
	}
	return o.change(ctx, p, o.To, edit)
}

// source is the build to promote: build=N, or from's stable build, whose
// record must verify and match.
func (o *promoteOptions) source(ctx context.Context, p *publish.Publisher) (manifest.BuildRef, error) {
	if o.Build != "" {
		return buildRef(ctx, p, o.App, o.Build, o.MinNative, o.MaxNative)
	}
	from, err := p.Pointer(ctx, o.App, o.From)
	if err != nil {
		return manifest.BuildRef{}, err
	}
	if from == nil {
		return manifest.BuildRef{}, fmt.Errorf("%s has no channel %s with a verified latest.json; see `deploy channel list app=%s`", o.App, o.From, o.App)
	}
	b, err := p.ReadBuild(ctx, o.App, from.Build.Number)
	if err != nil {
		return manifest.BuildRef{}, err
	}
	if b.SHA256 != from.Build.SHA256 {
		return manifest.BuildRef{}, fmt.Errorf("channel %s names build %d with other content than its build record; fix %s first", o.From, b.Number, o.From)
	}
	return withNative(from.Build, o.MinNative, o.MaxNative)
}

type rollbackOptions struct {
	releaseOptions
	Channel string `param:"channel"`
	To      string `param:"to"`
}

// NewCmdRollback returns `deploy rollback`.
func NewCmdRollback(e *env) *cobra.Command {
	return newCommand(e, &cobra.Command{
		Use:   "rollback app=NAME [channel=production] [to=N]",
		Short: "Go back to the build a channel served before",
		Long: `Go back to the build a channel served before, or to build to=N: a new
signed latest.json with a higher sequence, so devices that installed the bad
build are offered the earlier one. With a staged rollout in progress, it
drops the candidate: devices in its cohort go back to the stable build.`,
		Example:     "  deploy rollback app=retailer channel=production\n  deploy rollback app=retailer to=11 notes=\"crash on login\"",
		Annotations: uses(releaseUses),
	}, &rollbackOptions{releaseOptions: releaseOptions{env: e}}, runRollback)
}

func runRollback(ctx context.Context, o *rollbackOptions) error {
	p, err := o.publisher(ctx)
	if err != nil {
		return err
	}
	h, err := o.history(ctx, p.Store, o.Channel)
	if err != nil && o.To == "" {
		return err
	}
	if o.To != "" {
		ref, err := buildRef(ctx, p, o.App, o.To, "", "")
		if err != nil {
			return err
		}
		// A build the channel served before comes back as it was served
		// then: its native bounds on the channel and its fallbacks.
		if h != nil {
			for _, l := range h.Chain {
				if l.Build.ID == ref.ID {
					return o.change(ctx, p, o.Channel, publish.Rollback(o.keptFallbacks(ctx, p, l)))
				}
			}
		}
		return o.change(ctx, p, o.Channel, publish.RollbackTo(ref))
	}
	switch {
	case len(h.Entries) == 0:
		return publish.MissingChannel(o.App, o.Channel)
	case len(h.Chain) == 0:
		return fmt.Errorf("%s has no channel %s with a verified latest.json; see `deploy channel list app=%s`", o.App, o.Channel, o.App)
	}
	cur := h.Chain[0]
	var before *manifest.Latest
	if cur.Candidate == nil {
		before, err = publish.RollbackTarget(h.Chain)
		if err != nil {
			return err
		}
		if _, err := p.ReadBuild(ctx, o.App, before.Build.Number); err != nil {
			return err
		}
		before = o.keptFallbacks(ctx, p, before)
	}
	return o.change(ctx, p, o.Channel, publish.Expect(cur.Sequence, publish.Rollback(before)))
}

// keptFallbacks is before without the fallbacks whose build record is gone
// (pruned since) or does not verify: a rollback must not name a build
// devices cannot get. It says which it left out.
func (o *rollbackOptions) keptFallbacks(ctx context.Context, p *publish.Publisher, before *manifest.Latest) *manifest.Latest {
	b := *before
	b.Fallbacks = nil
	log := o.log()
	for _, f := range before.Fallbacks {
		if _, err := p.ReadBuild(ctx, o.App, f.Number); err != nil {
			log.Warn().Msgf("the rollback does not bring back fallback build %d: %v", f.Number, err)
			continue
		}
		b.Fallbacks = append(b.Fallbacks, f)
	}
	return &b
}

// history reads a channel's verified history.
func (o *releaseOptions) history(ctx context.Context, st store.Store, channel string) (*publish.History, error) {
	trust, err := o.pinned()
	if err != nil {
		return nil, err
	}
	acl, _, err := publish.ReadACL(ctx, st, trust)
	if err != nil {
		return nil, err
	}
	return publish.ReadHistory(ctx, st, acl, o.App, channel)
}

type rolloutOptions struct {
	releaseOptions
	Channel string `param:"channel"`
	Build   string `param:"build"`
	Percent string `param:"percent,required"`
}

type pauseOptions struct {
	releaseOptions
	Channel string `param:"channel"`
}

// NewCmdRollout returns `deploy rollout` and its pause and resume.
func NewCmdRollout(e *env) *cobra.Command {
	c := newCommand(e, &cobra.Command{
		Use:   "rollout app=NAME [channel=production] [build=N] percent=P",
		Short: "Offer a build to a share of a channel's devices, raise it, complete it",
		Long: `Offer build=N to percent=P of a channel's devices as its candidate, the
stable build staying for the others; without build=, change the percentage
of the rollout in progress. A device's cohort is fixed per rollout, so
raising the percentage only adds devices. percent=100 completes it: the
candidate becomes the stable build.`,
		Example:     "  deploy rollout app=retailer build=12 percent=10\n  deploy rollout app=retailer percent=50\n  deploy rollout app=retailer percent=100",
		Annotations: uses(releaseUses),
	}, &rolloutOptions{releaseOptions: releaseOptions{env: e}}, runRollout)
	for _, paused := range []bool{true, false} {
		use, short := "resume", "Offer a paused rollout's candidate again"
		if paused {
			use, short = "pause", "Stop offering a rollout's candidate, keeping it and its cohorts"
		}
		c.AddCommand(newCommand(e, &cobra.Command{
			Use:         use + " app=NAME [channel=production]",
			Short:       short,
			Example:     "  deploy rollout " + use + " app=retailer channel=production",
			Annotations: uses(releaseUses),
		}, &pauseOptions{releaseOptions: releaseOptions{env: e}}, func(ctx context.Context, o *pauseOptions) error {
			p, err := o.publisher(ctx)
			if err != nil {
				return err
			}
			return o.change(ctx, p, o.Channel, publish.Pause(paused))
		}))
	}
	return c
}

func runRollout(ctx context.Context, o *rolloutOptions) error {
	percent, err := parsePercent("percent", o.Percent)
	if err != nil {
		return err
	}
	p, err := o.publisher(ctx)
	if err != nil {
		return err
	}
	edit := publish.SetPercent(percent)
	if o.Build != "" {
		ref, err := buildRef(ctx, p, o.App, o.Build, "", "")
		if err != nil {
			return err
		}
		edit = publish.Rollout(ref, percent)
	}
	return o.change(ctx, p, o.Channel, edit)
}
