package cli

import (
	"context"
	"errors"
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
	Channels []string `json:"channels"`
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
	fmt.Fprintln(tw, "BUILD\tVERSION\tCHANNELS\tSIZE\tUPLOADER\tDATE\tNOTES")
	for _, r := range rows {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\n", r.Number, r.Version, strings.Join(r.Channels, ","), humanBytes(r.Size), r.Uploader, r.Created.Local().Format(time.DateTime), firstLine(r.Notes))
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
		rows = append(rows, buildRow{Build: b, Channels: channels[b.Number]})
	}
	return rows, nil
}

// channelsByBuild maps build numbers to the channels whose verified
// latest.json points at them.
func channelsByBuild(ctx context.Context, st store.Store, acl *manifest.ACL, app string) (map[int64][]string, error) {
	out := map[int64][]string{}
	infos, err := st.List(ctx, manifest.ChannelsPrefix(app))
	if err != nil {
		return nil, err
	}
	for _, in := range infos {
		a, channel, ok := manifest.ParseLatestKey(in.Key)
		if !ok || a != app {
			continue
		}
		data, err := readKey(ctx, st, in.Key, manifest.MaxLatestSize)
		if errors.Is(err, store.ErrTooLarge) {
			continue // no device accepts it: no build is on that channel
		}
		if err != nil {
			return nil, err
		}
		l, err := acl.VerifyLatest(data, manifest.Expect{App: app, Channel: channel, Now: time.Now()})
		if err != nil {
			continue
		}
		out[l.Build.Number] = append(out[l.Build.Number], channel)
	}
	return out, nil
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
		Keys      []string `json:"keys"`
	}
	rows := []row{}
	for _, u := range acl.Users {
		for _, a := range sortedKeys(u.Grants) {
			if opts.App == "" || a == opts.App || a == manifest.AllApps {
				rows = append(rows, row{u.Name, a, u.Grants[a].CanUpload, u.Keys})
			}
		}
	}
	if opts.JSON {
		return writeJSON(opts.io.Out, map[string]any{"acl_version": acl.Version, "permissions": rows})
	}
	tw := tabwriter.NewWriter(opts.io.Out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "USERNAME\tAPP\tCAN_UPLOAD\tKEYS")
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\n", r.User, r.App, b2i(r.CanUpload), strings.Join(r.Keys, ","))
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
