package cli

import (
	"context"
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/cartona/deploy/manifest"
	"github.com/cartona/deploy/publish"
)

// NewCmdChannel returns `deploy channel list|create|delete|set`.
func NewCmdChannel(e *env) *cobra.Command {
	c := &cobra.Command{Use: "channel", Short: "List, create, configure or delete an app's channels"}
	c.AddCommand(
		newCommand(e, &cobra.Command{
			Use:     "list app=NAME",
			Short:   "List an app's channels: build, rollout, sequence, expiry, settings",
			Example: "  deploy channel list app=retailer",
		}, &channelListOptions{env: e}, runChannelList),
		newCommand(e, &cobra.Command{
			Use:   "create app=NAME channel=NAME build=N|from=CHANNEL [self_assign=1]",
			Short: "Create a channel serving an existing build",
			Long: `Create a channel serving an existing build (build=N, or the stable build
of channel from=). self_assign=1 lets devices pick the channel themselves
(the plugin's setChannel); the setting is signed in the channel's pointer.
promote, rollout, rollback and channel set refuse a channel that was not
created (or uploaded to) first, so the first production release is a
channel create.`,
			Example:     "  deploy channel create app=retailer channel=production from=beta\n  deploy channel create app=retailer channel=qa from=production self_assign=1",
			Annotations: uses(releaseUses),
		}, &channelCreateOptions{releaseOptions: releaseOptions{env: e}}, runChannelCreate),
		newCommand(e, &cobra.Command{
			Use:         "set app=NAME channel=NAME self_assign=0|1",
			Short:       "Change a channel's signed settings",
			Example:     "  deploy channel set app=retailer channel=beta self_assign=1",
			Annotations: uses(releaseUses),
		}, &channelSetOptions{releaseOptions: releaseOptions{env: e}}, runChannelSet),
		newCommand(e, &cobra.Command{
			Use:   "delete app=NAME channel=NAME",
			Short: "Stop serving a channel (its history stays)",
			Long: `Remove a channel's latest.json, so that devices on it are offered nothing.
Its history stays in the store, verifiable, and the name cannot be used
again: devices remember the sequence they saw on it.`,
			Example:     "  deploy channel delete app=retailer channel=old-beta",
			Annotations: uses(releaseUses),
		}, &channelDeleteOptions{releaseOptions: releaseOptions{env: e}}, runChannelDelete),
	)
	return c
}

type channelListOptions struct {
	*env
	storeOptions
	App  string `param:"app,required"`
	JSON bool   `param:"json"`
}

// channelRow is one line of `deploy channel list`.
type channelRow struct {
	Channel string `json:"channel"`
	// Pointer is the channel's verified latest.json; nil, with Problem,
	// when it does not verify.
	Pointer *manifest.Latest `json:"pointer,omitempty"`
	Halted  string           `json:"halted,omitempty"` // the halt's reason
	Problem string           `json:"problem,omitempty"`
}

func runChannelList(ctx context.Context, o *channelListOptions) error {
	if err := manifest.CheckName("app", o.App); err != nil {
		return usageError{err}
	}
	st, acl, err := o.verifiedACL(ctx)
	if err != nil {
		return err
	}
	channels, err := publish.Channels(ctx, st, o.App)
	if err != nil {
		return err
	}
	rows := []channelRow{}
	for _, ch := range channels {
		r := channelRow{Channel: ch}
		data, err := readKey(ctx, st, manifest.LatestKey(o.App, ch), manifest.MaxLatestSize)
		if err == nil {
			r.Pointer, err = acl.VerifyLatest(data, manifest.Expect{App: o.App, Channel: ch})
		}
		if err != nil {
			r.Problem = err.Error()
		} else if r.Pointer.Halted != nil {
			r.Halted = r.Pointer.Halted.Reason
		}
		rows = append(rows, r)
	}
	if o.JSON {
		return writeJSON(o.io.Out, rows)
	}
	if len(rows) == 0 {
		fmt.Fprintf(o.io.Err, "%s has no channels in %s; publish with `deploy upload app=%s dir=./www`\n", o.App, o.URL(), o.App)
		return nil
	}
	tw := tabwriter.NewWriter(o.io.Out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "CHANNEL\tBUILD\tVERSION\tROLLOUT\tSEQ\tEXPIRES\tSELF_ASSIGN")
	for _, r := range rows {
		l := r.Pointer
		if l == nil {
			fmt.Fprintf(tw, "%s\t-\t-\t-\t-\t-\t-\tDOES NOT VERIFY: %s\n", r.Channel, r.Problem)
			continue
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%d\t%s\t%d\n", r.Channel, l.Build.Number, l.Build.Version, rolloutState(l), l.Sequence, l.Expires.Local().Format(time.DateOnly), b2i(l.Settings.SelfAssign))
	}
	return tw.Flush()
}

// rolloutState is the ROLLOUT column: the candidate and its state.
func rolloutState(l *manifest.Latest) string {
	c := l.Candidate
	switch {
	case l.Halted != nil:
		return "halted: " + l.Halted.Reason
	case c == nil:
		return "-"
	case c.Paused:
		return fmt.Sprintf("build %d at %d%%, paused", c.Build.Number, c.Percent)
	}
	return fmt.Sprintf("build %d at %d%%", c.Build.Number, c.Percent)
}

type channelCreateOptions struct {
	releaseOptions
	Channel    string `param:"channel,required"`
	Build      string `param:"build"`
	From       string `param:"from"`
	SelfAssign bool   `param:"self_assign"`
}

func runChannelCreate(ctx context.Context, o *channelCreateOptions) error {
	if err := oneOf("the build the channel starts with", "build=N", o.Build, "from=CHANNEL (its stable build)", o.From); err != nil {
		return err
	}
	if err := manifest.CheckName("channel", o.Channel); err != nil {
		return usageError{err}
	}
	p, err := o.publisher(ctx)
	if err != nil {
		return err
	}
	src := promoteOptions{releaseOptions: o.releaseOptions, From: o.From, Build: o.Build}
	ref, err := src.source(ctx, p)
	if err != nil {
		return err
	}
	res, err := p.CreateChannel(ctx, o.App, o.Channel, ref, manifest.Settings{SelfAssign: o.SelfAssign}, o.Notes, o.DryRun)
	if res == nil {
		return err
	}
	return o.changed(res, err)
}

type channelSetOptions struct {
	releaseOptions
	Channel    string `param:"channel,required"`
	SelfAssign bool   `param:"self_assign"`
}

func runChannelSet(ctx context.Context, o *channelSetOptions) error {
	p, err := o.publisher(ctx)
	if err != nil {
		return err
	}
	return o.change(ctx, p, o.Channel, publish.SetSelfAssign(o.SelfAssign))
}

type channelDeleteOptions struct {
	releaseOptions
	Channel string `param:"channel,required"`
}

func runChannelDelete(ctx context.Context, o *channelDeleteOptions) error {
	if err := manifest.CheckName("channel", o.Channel); err != nil {
		return usageError{err}
	}
	p, err := o.publisher(ctx)
	if err != nil {
		return err
	}
	keys, err := p.DeleteChannel(ctx, o.App, o.Channel, o.DryRun)
	if keys == nil {
		return err
	}
	res := map[string]any{"app": o.App, "channel": o.Channel, "deleted": keys, "dry_run": o.DryRun}
	switch {
	case o.JSON && err == nil:
		return writeJSON(o.io.Out, res)
	case o.JSON:
	case o.DryRun:
		fmt.Fprintf(o.io.Out, "dry run: would delete %s; nothing written\n", keys[0])
	default:
		fmt.Fprintf(o.io.Out, "deleted channel %s of %s: devices on it are offered nothing; its history stays under %s\n", o.Channel, o.App, manifest.HistoryPrefix(o.App, o.Channel))
	}
	return partial(err, res)
}
