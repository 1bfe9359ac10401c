package cli

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/cartona/deploy/manifest"
	"github.com/cartona/deploy/publish"
	"github.com/cartona/deploy/store"
)

func newList(e *env) *cobra.Command {
	c := &cobra.Command{Use: "list", Short: "List builds or permissions"}
	builds := &cobra.Command{
		Use:     "builds app=NAME",
		Short:   "List an app's builds, newest first",
		Example: "  deploy list builds app=retailer",
		RunE:    func(c *cobra.Command, _ []string) error { return e.listBuilds(c) },
	}
	builds.Flags().String("app", "", "app name")
	storeFlags(builds)
	perms := &cobra.Command{
		Use:     "permissions [app=NAME]",
		Short:   "List who may upload, for one app or all",
		Example: "  deploy list permissions app=retailer",
		RunE:    func(c *cobra.Command, _ []string) error { return e.listPermissions(c) },
	}
	perms.Flags().String("app", "", "app name (default: every app)")
	storeFlags(perms)
	c.AddCommand(builds, perms)
	return c
}

// buildRow is one line of `deploy list builds`.
type buildRow struct {
	manifest.Build
	Channels []string `json:"channels"`
}

func (e *env) listBuilds(cmd *cobra.Command) error {
	cfg, err := e.load(cmd)
	if err != nil {
		return err
	}
	if err := cfg.require("app"); err != nil {
		return err
	}
	ctx := cmd.Context()
	app := cfg.str("app")
	if err := manifest.CheckName("app", app); err != nil {
		return usageError{err}
	}
	st, _, acl, err := openVerified(ctx, cfg)
	if err != nil {
		return err
	}
	channels, err := channelsByBuild(ctx, st, acl, app)
	if err != nil {
		return err
	}
	infos, err := st.List(ctx, manifest.BuildsPrefix(app))
	if err != nil {
		return err
	}
	rows := []buildRow{}
	for _, in := range infos {
		data, err := readKey(ctx, st, in.Key, manifest.MaxBuildSize)
		if err != nil {
			return err
		}
		b, err := manifest.VerifyBuild(acl, data, app)
		if err != nil {
			fmt.Fprintf(e.io.Err, "warning: skipping %s: %v\n", st.Location(in.Key), err)
			continue
		}
		rows = append(rows, buildRow{Build: *b, Channels: channels[b.Number]})
	}
	sort.Slice(rows, func(i, j int) bool { return rows[i].Number > rows[j].Number })
	if cfg.bool("json") {
		return writeJSON(e.io.Out, rows)
	}
	if len(rows) == 0 {
		fmt.Fprintf(e.io.Err, "%s has no builds in %s; publish one with `deploy upload app=%s dir=./www`\n", app, cfg.storeURL(), app)
		return nil
	}
	tw := tabwriter.NewWriter(e.io.Out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "BUILD\tVERSION\tCHANNELS\tSIZE\tUPLOADER\tDATE\tNOTES")
	for _, r := range rows {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\n", r.Number, r.Version, strings.Join(r.Channels, ","), humanBytes(r.Size), r.Uploader, r.Created.Local().Format(time.DateTime), firstLine(r.Notes))
	}
	return tw.Flush()
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
		rest := strings.TrimPrefix(in.Key, manifest.ChannelsPrefix(app))
		channel, ok := strings.CutSuffix(rest, "/latest.json")
		if !ok {
			continue
		}
		data, err := readKey(ctx, st, in.Key, manifest.MaxLatestSize)
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

func (e *env) listPermissions(cmd *cobra.Command) error {
	cfg, err := e.load(cmd)
	if err != nil {
		return err
	}
	app := cfg.str("app")
	_, _, acl, err := openVerified(cmd.Context(), cfg)
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
			if app == "" || a == app || a == manifest.AllApps {
				rows = append(rows, row{u.Name, a, u.Grants[a].CanUpload, u.Keys})
			}
		}
	}
	if cfg.bool("json") {
		return writeJSON(e.io.Out, map[string]any{"acl_version": acl.Version, "permissions": rows})
	}
	tw := tabwriter.NewWriter(e.io.Out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "USERNAME\tAPP\tCAN_UPLOAD\tKEYS")
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\n", r.User, r.App, b2i(r.CanUpload), strings.Join(r.Keys, ","))
	}
	fmt.Fprintf(tw, "(ACL version %d)\n", acl.Version)
	return tw.Flush()
}

// openVerified opens the store and reads its ACL, verified.
func openVerified(ctx context.Context, cfg *config) (store.Store, manifest.Trust, *manifest.ACL, error) {
	st, err := cfg.openStore(ctx)
	if err != nil {
		return nil, manifest.Trust{}, nil, err
	}
	trust, err := cfg.trust()
	if err != nil {
		return nil, manifest.Trust{}, nil, err
	}
	acl, _, err := publish.ReadACL(ctx, st, trust)
	if err != nil {
		return nil, manifest.Trust{}, nil, err
	}
	return st, trust, acl, nil
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
