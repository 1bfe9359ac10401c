package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"time"

	"github.com/spf13/cobra"

	"github.com/cartona/deploy/manifest"
	"github.com/cartona/deploy/publish"
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
		Short: "Check a channel exactly as a device would, bundle and files included",
		Long: `Check a channel's latest.json exactly as a device would: the ACL against the
pinned root key, the signer's grant, app, channel, expiry, and no rollback
below what you verified or signed before (seen.json in your configuration
folder: upload and the release commands record the sequence they sign);
then download the bundle and check its size and sha256, and the file
manifest against its signed digest with every file object it names (size
and sha256 of the content, Brotli forms decoded): those of the stable
build, a rollout's candidate and fallback builds. The first file that
fails is named with its rule.
With device= and/or native=, also show the build that device would get.`,
		Example: "  deploy verify app=retailer\n  deploy verify app=retailer channel=beta --json\n  deploy verify app=retailer device=6f1c0e2a native=2.1.0",
	}, &verifyOptions{env: e}, runVerify)
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
	id, err := seenID(opts.URL(), opts.App, opts.Channel)
	if err != nil {
		return err
	}
	floors, err := readSeen()
	if err != nil {
		return err
	}
	l, acl, err := opts.check(ctx, st, trust, floorOf(floors, id))
	if err != nil {
		return err
	}
	files, err := publish.CheckFiles(ctx, st, opts.App, served(l))
	if err != nil {
		return filesRejected(err)
	}
	raiseSeen(id, seen{ACLVersion: acl.Version, Sequence: l.Sequence}) // a floor not written only protects less
	var sel *manifest.Selection
	if opts.Device != "" || opts.Native != "" {
		s := l.Select(opts.Native, opts.Device)
		sel = &s
	}
	if opts.JSON {
		doc := map[string]any{"ok": true, "acl_version": acl.Version, "latest": l, "files_verified": files.Files}
		if sel != nil {
			doc["selected"] = map[string]any{"build": sel.Build, "reason": sel.Reason, "detail": sel.Detail}
		}
		return writeJSON(opts.io.Out, doc)
	}
	fmt.Fprintf(opts.io.Out, "OK %s %s: build %d (version %s), sequence %d, ACL version %d, bundle %s verified (%s, sha256 %s), %s, expires %s\n",
		opts.App, opts.Channel, l.Build.Number, l.Build.Version, l.Sequence, acl.Version, l.Build.Bundle, humanBytes(l.Build.Size), l.Build.SHA256, filesVerified(files), l.Expires.Format(time.DateOnly))
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

// filesVerified says in the OK line how many files were checked.
func filesVerified(files publish.FilesChecked) string {
	if files.Manifests == 0 {
		return "no file manifest (an older build: devices get the zip)"
	}
	if files.Files == 1 {
		return "1 file verified"
	}
	return fmt.Sprintf("%d files verified", files.Files)
}

// check verifies the channel's latest.json and the bundle of each build
// it serves as a device would, refusing anything older than last.
func (opts *verifyOptions) check(ctx context.Context, st store.Store, trust manifest.Trust, last seen) (*manifest.Latest, *manifest.ACL, error) {
	app, channel := opts.App, opts.Channel
	aclData, err := readKey(ctx, st, manifest.ACLKey, manifest.MaxACLSize)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil, fmt.Errorf("%s does not exist: %w; check store=, or have an administrator create the store with `deploy init`", st.Location(manifest.ACLKey), publish.ErrNoACL)
	}
	if err != nil {
		return nil, nil, err
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
		return nil, nil, withHint(fmt.Errorf("REJECTED %s: %w", st.Location(manifest.LatestKey(app, channel)), err), rejectedHint(app, channel, manifest.RuleOf(err)))
	}
	for _, ref := range served(l) {
		if err := checkBundle(ctx, st, ref); err != nil {
			return nil, nil, err
		}
	}
	return l, acl, nil
}

// rejectedHint is what to do about a channel's latest.json that failed
// verification by rule.
func rejectedHint(app, channel string, rule manifest.Rule) string {
	switch rule {
	case manifest.RuleExpired:
		return fmt.Sprintf("devices stopped taking updates from it; sign it again: `deploy upload` of the build the channel serves renews it, or `deploy promote app=%s build=N to=%s`", app, channel)
	case manifest.RuleRollback, manifest.RuleACLRollback:
		return "it is older than one this machine verified before (seen.json): the store was restored from a backup, or an old copy was put back; devices that saw the newer one refuse it too. Publish again to move the channel past it"
	case manifest.RuleACLUntrusted:
		return "the ACL is not signed by the root key you pin: check root_key, or ask your administrator"
	}
	return fmt.Sprintf("devices refuse it and keep the build they run. If deploy did not write it, find out who can write to the store; `deploy promote app=%s build=N to=%s` or a new upload replaces it", app, channel)
}

// served returns the builds a pointer offers: stable, fallbacks,
// candidate.
func served(l *manifest.Latest) []manifest.BuildRef {
	refs := append([]manifest.BuildRef{l.Build}, l.Fallbacks...)
	if l.Candidate != nil {
		refs = append(refs, l.Candidate.Build)
	}
	return refs
}

// filesRejected is the failure of a file manifest or file object: with
// --json, its rule, build and file are in "result".
func filesRejected(err error) error {
	var fe *publish.FileError
	if !errors.As(err, &fe) {
		return err
	}
	res := map[string]any{"ok": false, "rule": manifest.RuleOf(err), "build": fe.Build.Number, "key": fe.Key}
	if fe.File != "" {
		res["file"] = fe.File
	}
	hint := "the store's copy was changed outside deploy, and devices that download files would refuse it; delete the object, then upload a new build of the app: an upload writes the file objects the store lacks"
	if fe.File == "" {
		hint = "the store's copy was changed outside deploy; upload a new build of the app, which writes a file manifest of its own"
	}
	return withHint(resultError{fmt.Errorf("REJECTED: %w", err), res}, hint)
}

// checkBundle downloads a build's bundle and checks its size and sha256.
func checkBundle(ctx context.Context, st store.Store, ref manifest.BuildRef) error {
	rc, _, err := st.Get(ctx, ref.Bundle)
	if errors.Is(err, fs.ErrNotExist) { // devices that download the zip fail: a verdict, not an outage
		return withHint(fmt.Errorf("REJECTED: build %d: %w", ref.Number, &manifest.Error{Rule: manifest.RuleBundleMismatch, Detail: "its bundle " + ref.Bundle + " is missing from the store"}),
			"something deleted it outside deploy (a prune keeps every bundle a channel serves); move the channel to a build whose bundle is there: deploy rollback, or upload a new build")
	}
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
