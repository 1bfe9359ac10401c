package cli

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io/fs"
	"os/exec"
	"strings"

	"github.com/spf13/cobra"

	"github.com/cartona/deploy/manifest"
	"github.com/cartona/deploy/publish"
	"github.com/cartona/deploy/store"
)

func newUpload(e *env) *cobra.Command {
	c := &cobra.Command{
		Use:   "upload app=NAME dir=FOLDER",
		Short: "Zip, sign and publish a web build to a channel",
		Long: `Zip, sign and publish a web build (the folder ionic build writes) as the
newest build of a channel. Uploading a build the channel already has
publishes nothing.`,
		Example: "  deploy upload app=retailer dir=./www\n  deploy upload app=retailer dir=./www channel=beta version=2.4.0 notes=\"fix checkout\"",
		RunE:    func(c *cobra.Command, _ []string) error { return e.upload(c) },
	}
	f := c.Flags()
	f.String("app", "", "app name, as devices ask for it")
	f.String("dir", "", "web build folder with index.html at its root")
	f.String("channel", "production", "channel to publish to")
	f.String("version", "", "version string devices get (default: the build number)")
	f.String("notes", "", "release notes kept in the build record")
	f.String("min_native", "", "lowest native app version this build runs on")
	f.String("cdn", "", "public base URL that serves the store (https://d123.cloudfront.net)")
	f.String("distribution", "", "CloudFront distribution id to invalidate latest.json in")
	f.String("username", defaultUsername(), "your user name in the ACL")
	f.Duration("expires", publish.DefaultExpiry, "how long the channel's latest.json stays valid")
	storeFlags(c)
	return c
}

func (e *env) upload(cmd *cobra.Command) error {
	cfg, err := e.load(cmd)
	if err != nil {
		return err
	}
	if err := cfg.require("app", "dir"); err != nil {
		return err
	}
	ctx := cmd.Context()
	log := e.logger(cfg.bool("verbose"))
	st, err := cfg.openStore(ctx)
	if err != nil {
		return err
	}
	key, err := cfg.userKey(true)
	if err != nil {
		return err
	}
	if err := e.bootstrap(ctx, cfg, st, key); err != nil {
		return err
	}
	trust, err := cfg.trust()
	if err != nil {
		return err
	}
	p := &publish.Publisher{Store: st, Key: key, Trust: trust, CDN: cfg.str("cdn")}
	if id := cfg.str("distribution"); id != "" {
		if p.Invalidator, err = invalidator(ctx, id); err != nil {
			return err
		}
	}
	bar := newProgress(e.io.Err)
	req := publish.Request{
		App: cfg.str("app"), Channel: cfg.str("channel"), Dir: cfg.str("dir"), Version: cfg.str("version"),
		Notes: cfg.str("notes"), MinNative: cfg.str("min_native"), GitCommit: gitCommit(cfg.str("dir")),
		Expires: cfg.v.GetDuration("expires"), Progress: bar.update,
		Stage: func(s string) { bar.clear(); log.Debug().Msg(s) },
	}
	res, err := p.Upload(ctx, req)
	bar.clear()
	if res != nil && !res.NotifyAppReady && !res.Unchanged && !res.Renewed {
		log.Warn().Msg("no .js file calls notifyAppReady(): the Capgo plugin will roll this build back after appReadyTimeout (10 s); call CapacitorUpdater.notifyAppReady() when your app starts")
	}
	if res == nil {
		return err
	}
	if cfg.bool("json") {
		if jerr := writeJSON(e.io.Out, res); jerr != nil {
			return jerr
		}
		return err
	}
	switch {
	case res.Unchanged:
		fmt.Fprintf(e.io.Out, "%s %s already has this build (build %d, version %s): nothing published\n", res.App, res.Channel, res.Number, res.Version)
	case res.Renewed:
		fmt.Fprintf(e.io.Out, "%s %s already has this build (build %d, version %s): signed its latest.json again with a later expiry\n", res.App, res.Channel, res.Number, res.Version)
	case res.Superseded:
		fmt.Fprintf(e.io.Out, "recorded %s build %d (version %s), but %s already points at a newer build\n", res.App, res.Number, res.Version, res.Channel)
	default:
		fmt.Fprintf(e.io.Out, "published %s build %d (version %s) to %s\n", res.App, res.Number, res.Version, res.Channel)
	}
	fmt.Fprintf(e.io.Out, "  bundle  %s\n  size    %s, %d files\n  sha256  %s\n  latest  %s\n", res.Bundle, humanBytes(res.Size), res.Files, res.SHA256, res.Latest)
	return err
}

// bootstrap makes a fresh local store usable with one command: it creates a
// local root key and an ACL that grants the local user every app.
func (e *env) bootstrap(ctx context.Context, cfg *config, st store.Store, key ed25519.PrivateKey) error {
	if !cfg.isLocal() || cfg.str("root_key") != "" {
		return nil
	}
	if _, err := st.Stat(ctx, manifest.ACLKey); err == nil {
		return nil
	}
	root, created, err := manifest.LoadOrGenerateKey(cfg.str("root_key_file"))
	if err != nil {
		return fmt.Errorf("root key: %w", err)
	}
	if created {
		fmt.Fprintf(e.io.Err, "created a local root key at %s (mode 0600): it signs the ACL of this store; keep it private\n", cfg.str("root_key_file"))
	}
	user := cfg.str("username")
	if err := manifest.CheckName("user", user); err != nil {
		return usageError{err}
	}
	pub := manifest.FormatPublicKey(manifest.Public(key))
	users := []manifest.User{{Name: user, Keys: []string{pub}, Grants: map[string]manifest.Grant{manifest.AllApps: {CanUpload: true}}}}
	if _, err := publish.InitACL(ctx, st, root, users); errors.Is(err, fs.ErrExist) {
		return nil // bootstrapped meanwhile by a concurrent upload
	} else if err != nil {
		return err
	}
	fmt.Fprintf(e.io.Err, "created the ACL of local store %s, granting %s upload to every app\n", st.Location(manifest.ACLKey), user)
	return nil
}

// gitCommit is the commit of the git work tree holding dir, if any.
func gitCommit(dir string) string {
	out, err := exec.Command("git", "-C", dir, "rev-parse", "HEAD").Output()
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(out))
}

func humanBytes(n int64) string {
	switch {
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}
