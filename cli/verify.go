package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/cartona/deploy/manifest"
)

func newVerify(e *env) *cobra.Command {
	c := &cobra.Command{
		Use:   "verify app=NAME [channel=production]",
		Short: "Check a channel exactly as a device would, bundle included",
		Long: `Check a channel's latest.json exactly as a device would: the ACL against the
pinned root key, the signer's grant, app, channel, expiry, and no rollback
below what this machine saw before; then download the bundle and check its
size and sha256.`,
		RunE: func(c *cobra.Command, _ []string) error { return e.verify(c) },
	}
	c.Flags().String("app", "", "app name")
	c.Flags().String("channel", "production", "channel")
	storeFlags(c)
	return c
}

// seen is the anti-rollback state of `deploy verify`, per store, app and
// channel: the highest ACL version and sequence verified before.
type seen struct {
	ACLVersion int64 `json:"acl_version"`
	Sequence   int64 `json:"sequence"`
}

func seenPath() string { return filepath.Join(configDir(), "seen.json") }

func (e *env) verify(cmd *cobra.Command) error {
	cfg, err := e.load(cmd)
	if err != nil {
		return err
	}
	if err := cfg.require("app"); err != nil {
		return err
	}
	ctx := cmd.Context()
	app, channel := cfg.str("app"), cfg.str("channel")
	st, err := cfg.openStore(ctx)
	if err != nil {
		return err
	}
	trust, err := cfg.trust()
	if err != nil {
		return err
	}
	states := map[string]seen{}
	if data, err := os.ReadFile(seenPath()); err == nil {
		json.Unmarshal(data, &states)
	}
	id := cfg.storeURL() + " " + app + "/" + channel
	last := states[id]

	aclData, err := readKey(ctx, st, manifest.ACLKey, manifest.MaxACLSize)
	if err != nil {
		return notFound(err, "the store has no ACL; an administrator runs `deploy init`")
	}
	latestData, err := readKey(ctx, st, manifest.LatestKey(app, channel), manifest.MaxLatestSize)
	if err != nil {
		return notFound(err, fmt.Sprintf("%s has no channel %s; publish with `deploy upload app=%s channel=%s`", app, channel, app, channel))
	}
	l, acl, err := trust.VerifyLatest(aclData, latestData, manifest.Expect{App: app, Channel: channel, MinACLVersion: last.ACLVersion, MinSequence: last.Sequence, Now: time.Now()})
	if err != nil {
		return fmt.Errorf("REJECTED %s: %w", st.Location(manifest.LatestKey(app, channel)), err)
	}
	rc, _, err := st.Get(ctx, l.Build.Bundle)
	if err != nil {
		return fmt.Errorf("REJECTED: bundle %s: %w", l.Build.Bundle, err)
	}
	err = manifest.VerifyBundle(l.Build, rc)
	rc.Close()
	if err != nil {
		return fmt.Errorf("REJECTED: %w", err)
	}
	states[id] = seen{ACLVersion: acl.Version, Sequence: l.Sequence}
	if data, err := json.MarshalIndent(states, "", "  "); err == nil {
		writeFileAtomic(seenPath(), data, 0o600)
	}
	if cfg.bool("json") {
		return writeJSON(e.io.Out, map[string]any{"ok": true, "acl_version": acl.Version, "latest": l})
	}
	fmt.Fprintf(e.io.Out, "OK %s %s: build %d (version %s), sequence %d, ACL version %d, bundle %s verified (%s, sha256 %s), expires %s\n",
		app, channel, l.Build.Number, l.Build.Version, l.Sequence, acl.Version, l.Build.Bundle, humanBytes(l.Build.Size), l.Build.SHA256, l.Expires.Format(time.DateOnly))
	return nil
}

func notFound(err error, hint string) error {
	if errors.Is(err, fs.ErrNotExist) {
		return errors.New(hint)
	}
	return err
}
