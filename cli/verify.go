package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/cartona/deploy/manifest"
	"github.com/cartona/deploy/store"
)

type verifyOptions struct {
	*env
	storeOptions
	App     string `param:"app,required"`
	Channel string `param:"channel"`
	Device  string `param:"device"`
	Native  string `param:"native"`
	JSON    bool   `param:"json"`
}

// NewCmdVerify returns `deploy verify`.
func NewCmdVerify(e *env) *cobra.Command {
	return newCommand(e, &cobra.Command{
		Use:   "verify app=NAME [channel=production]",
		Short: "Check a channel exactly as a device would, bundle included",
		Long: `Check a channel's latest.json exactly as a device would: the ACL against the
pinned root key, the signer's grant, app, channel, expiry, and no rollback
below what this machine saw before; then download the bundle and check its
size and sha256 (those of a rollout's candidate and of fallback builds too).
With device= and/or native=, also show the build that device would get.`,
		Example: "  deploy verify app=retailer\n  deploy verify app=retailer channel=beta --json\n  deploy verify app=retailer device=6f1c0e2a native=2.1.0",
	}, &verifyOptions{env: e}, runVerify)
}

// seen is the anti-rollback state of `deploy verify`, per store, app and
// channel: the highest ACL version and sequence verified before.
type seen struct {
	ACLVersion int64 `json:"acl_version"`
	Sequence   int64 `json:"sequence"`
}

func seenPath() string { return filepath.Join(configDir(), "seen.json") }

// seenID names a channel in seen.json: by the store's identity, so that
// every spelling of one store's URL shares one memory.
func (opts *verifyOptions) seenID() (string, error) {
	loc, err := parseStore(opts.URL())
	if err != nil {
		return "", err
	}
	return loc.identity() + " " + opts.App + "/" + opts.Channel, nil
}

func runVerify(ctx context.Context, opts *verifyOptions) error {
	st, err := opts.store(ctx)
	if err != nil {
		return err
	}
	trust, err := opts.pinned()
	if err != nil {
		return err
	}
	id, err := opts.seenID()
	if err != nil {
		return err
	}
	states := map[string]seen{}
	if data, err := os.ReadFile(seenPath()); err == nil {
		json.Unmarshal(data, &states)
	}
	l, acl, err := opts.check(ctx, st, trust, states[id])
	if err != nil {
		return err
	}
	states[id] = seen{ACLVersion: acl.Version, Sequence: l.Sequence}
	if data, err := json.MarshalIndent(states, "", "  "); err == nil {
		writeFileAtomic(seenPath(), data, 0o600)
	}
	var sel *manifest.Selection
	if opts.Device != "" || opts.Native != "" {
		s := l.Select(opts.Native, opts.Device)
		sel = &s
	}
	if opts.JSON {
		doc := map[string]any{"ok": true, "acl_version": acl.Version, "latest": l}
		if sel != nil {
			doc["selected"] = map[string]any{"build": sel.Build, "reason": sel.Reason, "detail": sel.Detail}
		}
		return writeJSON(opts.io.Out, doc)
	}
	fmt.Fprintf(opts.io.Out, "OK %s %s: build %d (version %s), sequence %d, ACL version %d, bundle %s verified (%s, sha256 %s), expires %s\n",
		opts.App, opts.Channel, l.Build.Number, l.Build.Version, l.Sequence, acl.Version, l.Build.Bundle, humanBytes(l.Build.Size), l.Build.SHA256, l.Expires.Format(time.DateOnly))
	if l.Candidate != nil || l.Halted != nil || len(l.Fallbacks) > 0 {
		fmt.Fprintf(opts.io.Out, "  serves %s\n", describe(l))
	}
	if sel != nil {
		printSelection(opts.io.Out, opts.Device, opts.Native, *sel)
	}
	return nil
}

// printSelection says which build a device gets, and why.
func printSelection(w io.Writer, device, native string, s manifest.Selection) {
	who := "device " + device
	if device == "" {
		who = "a device"
	}
	if native != "" {
		who += " on native " + native
	}
	if s.Build == nil {
		fmt.Fprintf(w, "  %s gets no build (%s): %s\n", who, s.Reason, s.Detail)
		return
	}
	fmt.Fprintf(w, "  %s gets build %d (%s)\n", who, s.Build.Number, s.Reason)
}

// check verifies the channel's latest.json and its bundle as a device
// would, refusing anything older than last.
func (opts *verifyOptions) check(ctx context.Context, st store.Store, trust manifest.Trust, last seen) (*manifest.Latest, *manifest.ACL, error) {
	app, channel := opts.App, opts.Channel
	aclData, err := readKey(ctx, st, manifest.ACLKey, manifest.MaxACLSize)
	if err != nil {
		return nil, nil, notFound(err, "the store has no ACL; an administrator runs `deploy init`")
	}
	latestData, err := readKey(ctx, st, manifest.LatestKey(app, channel), manifest.MaxLatestSize)
	if err != nil {
		hint := fmt.Sprintf("%s has no channel %s; publish with `deploy upload app=%s channel=%s`", app, channel, app, channel)
		if history, lerr := st.List(ctx, manifest.HistoryPrefix(app, channel)); lerr == nil && len(history) > 0 {
			hint = fmt.Sprintf("channel %s of %s was deleted; its history stays (`deploy history app=%s channel=%s`), and its name is not used again", channel, app, app, channel)
		}
		return nil, nil, notFound(err, hint)
	}
	l, acl, err := trust.VerifyLatest(aclData, latestData, manifest.Expect{App: app, Channel: channel, MinACLVersion: last.ACLVersion, MinSequence: last.Sequence, Now: time.Now()})
	if err != nil {
		return nil, nil, fmt.Errorf("REJECTED %s: %w", st.Location(manifest.LatestKey(app, channel)), err)
	}
	refs := append([]manifest.BuildRef{l.Build}, l.Fallbacks...)
	if l.Candidate != nil {
		refs = append(refs, l.Candidate.Build)
	}
	for _, ref := range refs {
		if err := checkBundle(ctx, st, ref); err != nil {
			return nil, nil, err
		}
	}
	return l, acl, nil
}

// checkBundle downloads a build's bundle and checks its size and sha256.
func checkBundle(ctx context.Context, st store.Store, ref manifest.BuildRef) error {
	rc, _, err := st.Get(ctx, ref.Bundle)
	if err != nil {
		return fmt.Errorf("REJECTED: bundle %s of build %d: %w", ref.Bundle, ref.Number, err)
	}
	defer rc.Close()
	if err := manifest.VerifyBundle(ref, rc); err != nil {
		return fmt.Errorf("REJECTED: build %d: %w", ref.Number, err)
	}
	return nil
}

func notFound(err error, hint string) error {
	if errors.Is(err, fs.ErrNotExist) {
		return errors.New(hint)
	}
	return err
}
