package publish

import (
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/cartona/deploy/manifest"
)

// Length limits of an upload's free-form fields, in bytes. With them, and
// names of at most 64 bytes, the build record and latest.json stay under
// their size limits; [Publisher.Upload] also measures both envelopes,
// signed, before it writes anything.
const (
	MaxVersionLen   = 128
	MaxMinNativeLen = 64
	MaxGitCommitLen = 128
	MaxNotesLen     = 16 << 10
)

// Check validates the request's fields before anything is read or
// written: names, expiry, and the length and characters of every
// free-form field.
func (r Request) Check() error {
	if err := manifest.CheckName("app", r.App); err != nil {
		return err
	}
	if err := manifest.CheckName("channel", r.Channel); err != nil {
		return err
	}
	if r.Expires != 0 && r.Expires < time.Hour {
		return fmt.Errorf("expires %s is too short: devices would refuse the channel soon after publishing; use 1h or more (default %s)", r.Expires, DefaultExpiry)
	}
	for _, f := range []struct {
		name, value string
		max         int
		multiline   bool
	}{
		{"version", r.Version, MaxVersionLen, false},
		{"min_native", r.MinNative, MaxMinNativeLen, false},
		{"max_native", r.MaxNative, MaxMinNativeLen, false},
		{"git commit", r.GitCommit, MaxGitCommitLen, false},
		{"notes", r.Notes, MaxNotesLen, true},
	} {
		if err := checkText(f.name, f.value, f.max, f.multiline); err != nil {
			return err
		}
	}
	if r.Rollout < 0 || r.Rollout > 100 {
		return checkPercent(r.Rollout)
	}
	if err := CheckVersion(r.Version); err != nil {
		return err
	}
	return CheckNativeRange(r.MinNative, r.MaxNative)
}

// checkText refuses a field over max bytes, not UTF-8, or with control
// characters (newlines and tabs are allowed when multiline).
func checkText(name, value string, max int, multiline bool) error {
	if len(value) > max {
		return fmt.Errorf("%s is %d bytes long, over the limit of %d; shorten it", name, len(value), max)
	}
	if !utf8.ValidString(value) {
		return fmt.Errorf("%s is not valid UTF-8", name)
	}
	bad := func(r rune) bool {
		return (r < 0x20 && !(multiline && (r == '\n' || r == '\t' || r == '\r'))) || r == 0x7f
	}
	if i := strings.IndexFunc(value, bad); i >= 0 {
		return fmt.Errorf("%s contains the control character %U at byte %d; remove it", name, value[i], i)
	}
	return nil
}

// checkSizes signs the build record and latest.json this upload would
// write, with the widest values still unknown (build number, sequence,
// size), and refuses the upload if either envelope would pass its size
// limit: verifiers refuse an oversized envelope, which would leave the
// channel dead until the next upload.
func (p *Publisher) checkSizes(req Request, uploader string) error {
	now := p.now()
	ref := manifest.BuildRef{
		ID: manifest.BuildID(req.App, manifest.MaxSequence), Number: manifest.MaxSequence, Version: req.Version,
		Bundle: manifest.BundleKey(req.App, strings.Repeat("f", 64)), SHA256: strings.Repeat("f", 64),
		Size: manifest.MaxSequence, MinNative: req.MinNative, MaxNative: req.MaxNative,
	}
	if ref.Version == "" {
		ref.Version = DefaultVersion(ref.Number)
	}
	build := manifest.Build{App: req.App, BuildRef: ref, Uploader: uploader, Created: now, Notes: req.Notes, GitCommit: req.GitCommit}
	latest := manifest.Latest{App: req.App, Channel: req.Channel, Sequence: manifest.MaxSequence, Issued: now, Expires: now.Add(DefaultExpiry), Build: ref}
	for _, e := range []struct {
		what, typ string
		payload   any
		limit     int
	}{
		{"the build record", manifest.TypeBuild, build, manifest.MaxBuildSize},
		{"latest.json", manifest.TypeLatest, latest, manifest.MaxLatestSize},
	} {
		env, err := manifest.Sign(e.typ, e.payload, p.Key)
		if err != nil {
			return err
		}
		if n := len(env.Marshal()); n > e.limit {
			return fmt.Errorf("%s would be %d bytes, over the %d bytes that verifiers accept; shorten notes, version or min_native; nothing was uploaded", e.what, n, e.limit)
		}
	}
	return nil
}
