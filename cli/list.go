package cli

import (
	"context"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/cartona/deploy/manifest"
	"github.com/cartona/deploy/publish"
	"github.com/cartona/deploy/store"
)

// NewCmdList returns `deploy list builds|permissions`.
func NewCmdList(e *env) *cobra.Command {
	c := &cobra.Command{Use: "list", Short: "List builds or permissions"}
	c.AddCommand(
		newCommand(e, &cobra.Command{
			Use:     "builds app=NAME",
			Short:   "List an app's builds, newest first",
			Example: "  deploy list builds app=retailer",
		}, &listBuildsOptions{env: e}, runListBuilds),
		newCommand(e, &cobra.Command{
			Use:     "permissions [app=NAME]",
			Short:   "List who may upload, for one app or all (default: every app)",
			Example: "  deploy list permissions app=retailer",
		}, &listPermissionsOptions{env: e}, runListPermissions),
	)
	return c
}

type listBuildsOptions struct {
	*env
	storeOptions
	App  string `param:"app,required"`
	JSON bool   `param:"json"`
}

type listPermissionsOptions struct {
	*env
	storeOptions
	App  string `param:"app"`
	JSON bool   `param:"json"`
}

// buildRow is one line of `deploy list builds`.
type buildRow struct {
	manifest.Build
	Channels []string `json:"channels"` // "beta", "production@10%", "production(fallback)"
	Before   []string `json:"before"`   // channels that served it before
}

func orEmpty(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func runListBuilds(ctx context.Context, opts *listBuildsOptions) error {
	if err := manifest.CheckName("app", opts.App); err != nil {
		return usageError{err}
	}
	rows, err := opts.builds(ctx)
	if err != nil {
		return err
	}
	if opts.JSON {
		return writeJSON(opts.io.Out, rows)
	}
	if len(rows) == 0 {
		fmt.Fprintf(opts.io.Err, "%s has no builds in %s; publish one with `deploy upload app=%s dir=./www`\n", opts.App, opts.URL(), opts.App)
		return nil
	}
	tw := tabwriter.NewWriter(opts.io.Out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "BUILD\tVERSION\tCHANNELS\tBEFORE\tSIZE\tUPLOADER\tDATE\tNOTES")
	for _, r := range rows {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.Number, r.Version, dash(strings.Join(r.Channels, ",")), dash(strings.Join(r.Before, ",")), humanBytes(r.Size), r.Uploader, r.Created.Local().Format(time.DateTime), firstLine(r.Notes))
	}
	return tw.Flush()
}

// builds reads the app's verified build records, newest first, skipping
// (with a warning) those that do not verify.
func (opts *listBuildsOptions) builds(ctx context.Context) ([]buildRow, error) {
	st, acl, err := opts.verifiedACL(ctx)
	if err != nil {
		return nil, err
	}
	channels, err := channelsByBuild(ctx, st, acl, opts.App)
	if err != nil {
		return nil, err
	}
	builds, err := publish.ListBuilds(ctx, st, acl, opts.App, func(key string, err error) {
		fmt.Fprintf(opts.io.Err, "warning: skipping %s: %v\n", st.Location(key), err)
	})
	if err != nil {
		return nil, err
	}
	rows := []buildRow{}
	for _, b := range builds {
		rows = append(rows, buildRow{Build: b, Channels: orEmpty(channels.now[b.Number]), Before: orEmpty(channels.before[b.Number])})
	}
	return rows, nil
}

// buildChannels says where each build is, by number: the channels whose
// pointer offers it now (stable, candidate or fallback) and those whose
// verified history held it before.
type buildChannels struct {
	now, before map[int64][]string
}

// channelsByBuild reads every channel's verified history.
func channelsByBuild(ctx context.Context, st store.Store, acl *manifest.ACL, app string) (*buildChannels, error) {
	out := &buildChannels{now: map[int64][]string{}, before: map[int64][]string{}}
	channels, err := publish.Channels(ctx, st, app)
	if err != nil {
		return nil, err
	}
	for _, ch := range channels {
		h, err := publish.ReadHistory(ctx, st, acl, app, ch)
		if err != nil {
			return nil, err
		}
		if len(h.Chain) == 0 {
			continue
		}
		offered := map[int64]bool{}
		for n, label := range offers(h.Chain[0], ch) {
			offered[n] = true
			out.now[n] = append(out.now[n], label)
		}
		held := map[int64]bool{}
		for _, l := range h.Chain[1:] {
			for n := range offers(l, ch) {
				if !offered[n] && !held[n] {
					held[n] = true
					out.before[n] = append(out.before[n], ch)
				}
			}
		}
	}
	return out, nil
}

// offers labels the builds a pointer offers: "beta" for its stable build,
// "beta@10%" for a candidate, "beta(fallback)" for a fallback.
func offers(l *manifest.Latest, channel string) map[int64]string {
	out := map[int64]string{}
	for _, f := range l.Fallbacks {
		out[f.Number] = channel + "(fallback)"
	}
	if c := l.Candidate; c != nil {
		out[c.Build.Number] = fmt.Sprintf("%s@%d%%", channel, c.Percent)
	}
	out[l.Build.Number] = channel
	return out
}

func runListPermissions(ctx context.Context, opts *listPermissionsOptions) error {
	_, acl, err := opts.verifiedACL(ctx)
	if err != nil {
		return err
	}
	type row struct {
		User      string   `json:"username"`
		App       string   `json:"app"`
		CanUpload bool     `json:"can_upload"`
		CanHalt   bool     `json:"can_halt"`
		Keys      []string `json:"keys"`
	}
	rows := []row{}
	for _, u := range acl.Users {
		for _, a := range sortedKeys(u.Grants) {
			if opts.App == "" || a == opts.App || a == manifest.AllApps {
				g := u.Grants[a]
				rows = append(rows, row{u.Name, a, g.CanUpload, g.CanHalt, u.Keys})
			}
		}
	}
	if opts.JSON {
		return writeJSON(opts.io.Out, map[string]any{"acl_version": acl.Version, "permissions": rows})
	}
	tw := tabwriter.NewWriter(opts.io.Out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "USERNAME\tAPP\tCAN_UPLOAD\tCAN_HALT\tKEYS")
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%s\n", r.User, r.App, b2i(r.CanUpload), b2i(r.CanHalt), strings.Join(r.Keys, ","))
	}
	fmt.Fprintf(tw, "(ACL version %d)\n", acl.Version)
	return tw.Flush()
}

// verifiedACL opens the store, which must exist, and reads its ACL,
// verified against the pinned root keys.
func (e *env) verifiedACL(ctx context.Context) (store.Store, *manifest.ACL, error) {
	st, err := e.store(ctx)
	if err != nil {
		return nil, nil, err
	}
	trust, err := e.pinned()
	if err != nil {
		return nil, nil, err
	}
	acl, _, err := publish.ReadACL(ctx, st, trust)
	if err != nil {
		return nil, nil, err
	}
	return st, acl, nil
}

// readKey reads a small object whole, refusing more than limit bytes.
func readKey(ctx context.Context, st store.Store, key string, limit int) ([]byte, error) {
	data, _, err := store.ReadSmall(ctx, st, key, limit)
	return data, err
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	if len(s) > 60 {
		s = s[:57] + "..."
	}
	return s
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}
