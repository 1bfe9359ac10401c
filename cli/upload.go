package cli

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os/exec"
	"runtime/debug"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/cartona/deploy/manifest"
	"github.com/cartona/deploy/publish"
	"github.com/cartona/deploy/store"
)

type uploadOptions struct {
	*env
	storeOptions
	App          string        `param:"app,required"`
	Dir          string        `param:"dir,required"`
	Channel      string        `param:"channel"`
	Version      string        `param:"version"`
	Notes        string        `param:"notes"`
	MinNative    string        `param:"min_native"`
	MaxNative    string        `param:"max_native"`
	Rollout      string        `param:"rollout"`
	DryRun       bool          `param:"dry_run"`
	CDN          string        `param:"cdn"`
	Distribution string        `param:"distribution"`
	Username     string        `param:"username"`
	Expires      time.Duration `param:"expires"`
	JSON         bool          `param:"json"`
}

// NewCmdUpload returns `deploy upload`.
func NewCmdUpload(e *env) *cobra.Command {
	return newCommand(e, &cobra.Command{
		Use:   "upload app=NAME dir=FOLDER",
		Short: "Zip, sign and publish a web build to a channel",
		Long: `Zip, sign and publish a web build (the folder ionic build writes) as the
newest build of a channel. Uploading a build the channel already has
publishes nothing.`,
		Example:     "  deploy upload app=retailer dir=./www\n  deploy upload app=retailer dir=./www channel=beta version=2.4.0 notes=\"fix checkout\"\n  deploy upload app=retailer dir=./www rollout=10 min_native=2.0",
		Annotations: uses("store root_key key_file root_key_file"),
	}, &uploadOptions{env: e}, runUpload)
}

// uploadMemoryLimit is the heap size past which an upload collects garbage
// harder (GOMEMLIMIT, when set, wins).
const uploadMemoryLimit = 40 << 20

func runUpload(ctx context.Context, opts *uploadOptions) error {
	// A soft limit keeps the collector from letting garbage double the
	// heap on builds of thousands of files; small builds stay below it.
	if debug.SetMemoryLimit(-1) == math.MaxInt64 {
		defer debug.SetMemoryLimit(debug.SetMemoryLimit(uploadMemoryLimit))
	}
	if err := publish.CheckNativeRange(opts.MinNative, opts.MaxNative); err != nil {
		return usageError{err}
	}
	percent, err := parseRollout(opts.Rollout)
	if err != nil {
		return err
	}
	// Before anything is created (keys, a local store, its ACL): a folder
	// that is no web build, such as dir=/tmp, fails here without a walk.
	if err := publish.CheckBuild(opts.Dir); err != nil {
		return err
	}
	// A key file in the build would be published with it: refused before
	// it is loaded or created (the zip refuses any other private key).
	if err := publish.CheckKeysOutside(opts.Dir, opts.KeyFile, opts.RootKeyFile); err != nil {
		return err
	}
	log := opts.log()
	bar := newProgress(opts.io.Err)
	req := publish.Request{
		App: opts.App, Channel: opts.Channel, Dir: opts.Dir, Version: opts.Version,
		Notes: opts.Notes, MinNative: opts.MinNative, MaxNative: opts.MaxNative, Rollout: percent, DryRun: opts.DryRun, GitCommit: gitCommit(opts.Dir),
		Expires: opts.Expires, Progress: bar.update,
		Stage: func(s string) { bar.clear(); log.Debug().Msg(s) },
	}
	if err := req.Check(); err != nil {
		return err
	}
	p, err := opts.publisher(ctx)
	if err != nil {
		return err
	}
	res, err := p.Upload(ctx, req)
	bar.clear()
	if res != nil && !res.DryRun && (res.Outcome == publish.Published || res.Outcome == publish.Renewed) {
		opts.rememberSigned(opts.URL(), res.App, res.Channel, res.Sequence)
	}
	if res != nil && !res.NotifyAppReady && res.Outcome != publish.Unchanged && res.Outcome != publish.Renewed {
		log.Warn().Msg("no .js file calls notifyAppReady(): the Capgo plugin will roll this build back after appReadyTimeout (10 s); call CapacitorUpdater.notifyAppReady() when your app starts")
	}
	if res != nil && res.Replaced != "" && !res.DryRun {
		log.Warn().Msgf("channel %s's latest.json did not verify (%s), so this upload replaced it and its history starts over; "+
			"what it held (a staged rollout, native fallbacks, self_assign) could not be trusted and was not kept: "+
			"set it again with deploy channel set app=%s channel=%s (see deploy channel set --help)", res.Channel, res.Replaced, res.App, res.Channel)
	}
	if res != nil {
		for _, w := range res.WideFallbacks {
			log.Warn().Msgf("%s: a build without bounds runs on every native version, so when one build of a channel has bounds, give every build both (min_native= and max_native=)", w)
		}
	}
	if res == nil {
		return err
	}
	switch {
	case opts.JSON && err == nil:
		return writeJSON(opts.io.Out, res)
	case !opts.JSON:
		printUpload(opts.io.Out, res)
	}
	return partial(err, res) // with --json, res is printed with the error
}

// publisher opens the store (bootstrapping a fresh local one) and loads
// the keys an upload needs. A dry run creates nothing: the store and the
// key must exist.
func (opts *uploadOptions) publisher(ctx context.Context) (*publish.Publisher, error) {
	open, write := opts.storeForWrite, !opts.DryRun
	if !write {
		open = opts.store
	}
	if opts.KeyFile != defaultKeyFile() { // a key_file given must be there before a store is made
		if _, err := opts.userKey(false, opts.io.Err); err != nil {
			return nil, err
		}
	}
	st, err := open(ctx)
	if err != nil {
		return nil, err
	}
	key, err := opts.userKey(write, opts.io.Err)
	if err != nil {
		return nil, err
	}
	if write {
		if err := opts.bootstrap(ctx, st, key); err != nil {
			return nil, err
		}
	}
	p, err := opts.newPublisher(ctx, st, key, opts.Distribution)
	if err != nil {
		return nil, err
	}
	p.CDN = opts.CDN
	return p, nil
}

func printUpload(w io.Writer, res *publish.Result) {
	switch o := res.Outcome; {
	case res.DryRun && o != publish.Unchanged && o != publish.Superseded:
		fmt.Fprintf(w, "dry run: would publish %s build %d (version %s) to %s at sequence %d; nothing written\n", res.App, res.Number, res.Version, res.Channel, res.Sequence)
		return
	case o == publish.Unchanged:
		fmt.Fprintf(w, "%s %s already has this build (build %d, version %s): nothing published\n", res.App, res.Channel, res.Number, res.Version)
	case o == publish.Renewed:
		fmt.Fprintf(w, "%s %s already has this build (build %d, version %s): signed its latest.json again with a later expiry\n", res.App, res.Channel, res.Number, res.Version)
	case o == publish.Superseded:
		fmt.Fprintf(w, "recorded %s build %d (version %s), but %s already points at a newer build\n", res.App, res.Number, res.Version, res.Channel)
	default:
		fmt.Fprintf(w, "published %s build %d (version %s) to %s", res.App, res.Number, res.Version, res.Channel)
		if res.Rollout > 0 {
			fmt.Fprintf(w, " for %d%% of its devices (a staged rollout: raise it with `deploy rollout app=%s channel=%s percent=%d`)", res.Rollout, res.App, res.Channel, nextPercent(res.Rollout))
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintf(w, "  bundle  %s\n  size    %s, %d files\n  sha256  %s\n  latest  %s\n", res.Bundle, humanBytes(res.Size), res.Files, res.SHA256, res.Latest)
	if res.Outcome != publish.Unchanged && res.Outcome != publish.Renewed {
		fmt.Fprintf(w, "  new     %d of %d files, %s uploaded\n", res.NewFiles, res.Files, humanBytes(res.NewBytes))
	}
}

// nextPercent is the share a staged rollout at percent goes to next:
// 10, 50, then 100 (every device).
func nextPercent(percent int64) int64 {
	for _, p := range []int64{10, 50} {
		if percent < p {
			return p
		}
	}
	return 100
}

// bootstrap makes a fresh local store usable with one command: it creates a
// local root key and an ACL that grants the local user every app.
func (opts *uploadOptions) bootstrap(ctx context.Context, st store.Store, key ed25519.PrivateKey) error {
	if !opts.isLocal() || opts.RootKey != "" {
		return nil
	}
	if _, err := st.Stat(ctx, manifest.ACLKey); err == nil {
		return nil
	}
	root, created, err := manifest.LoadOrGenerateKey(opts.RootKeyFile)
	if err != nil {
		return fmt.Errorf("root key: %w", err)
	}
	if created {
		fmt.Fprintf(opts.io.Err, "created a local root key at %s (mode 0600): it signs the ACL of this store; keep it private\n", opts.RootKeyFile)
	}
	if err := manifest.CheckName("user", opts.Username); err != nil {
		return usageError{err}
	}
	pub := manifest.FormatPublicKey(manifest.Public(key))
	users := []manifest.User{{Name: opts.Username, Keys: []string{pub}, Grants: map[string]manifest.Grant{manifest.AllApps: {CanUpload: true}}}}
	if _, err := publish.InitACL(ctx, st, root, users); errors.Is(err, fs.ErrExist) {
		return nil // bootstrapped meanwhile by a concurrent upload
	} else if err != nil {
		return err
	}
	fmt.Fprintf(opts.io.Err, "created the ACL of local store %s, granting %s upload to every app\n", st.Location(manifest.ACLKey), opts.Username)
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
