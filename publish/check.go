package publish

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/cartona/deploy/manifest"
)

// Length limits of an upload's free-form fields, in bytes. Notes must
// also fit, escaped, in the fullest pointer ([CheckNotes]); and
// [Publisher.Upload] measures the build record, signed, before it writes
// anything.
const (
	MaxVersionLen   = 128
	MaxMinNativeLen = 64
	MaxGitCommitLen = 128
	MaxNotesLen     = 16 << 10
)

// ErrInvalid is wrapped by the errors of values a caller gave that can
// never be right (a name, a length, a range), refused before anything is
// read or written.
var ErrInvalid = errors.New("invalid value")

// invalidError marks an error as the caller's mistake: [ErrInvalid].
type invalidError struct{ error }

func (e invalidError) Unwrap() []error { return []error{e.error, ErrInvalid} }

// invalid marks err, if not nil, as [ErrInvalid].
func invalid(err error) error {
	if err == nil {
		return nil
	}
	return invalidError{err}
}

// Check validates the request's fields before anything is read or
// written: names, expiry, and the length and characters of every
// free-form field. Its errors wrap [ErrInvalid].
func (r Request) Check() error { return invalid(r.check()) }

func (r Request) check() error {
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
	} {
		if err := checkText(f.name, f.value, f.max, f.multiline); err != nil {
			return err
		}
	}
	if err := CheckNotes(r.Notes); err != nil {
		return err
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

// CheckNotes refuses notes that a build record or latest.json cannot
// carry: over [MaxNotesLen] bytes, not UTF-8, control characters other
// than newlines and tabs, or notes that would take the fullest pointer
// deploy can sign ([worstPointer]) over [MaxPointerSize] once JSON has
// escaped them. Checked before anything is written, this bound makes sure
// that the pointer a change signs later, whatever the channel holds by
// then, has room for them.
func CheckNotes(notes string) error {
	if err := checkText("notes", notes, MaxNotesLen, true); err != nil {
		return err
	}
	worst := worstPointer()
	worst.Notes = notes
	n, err := pointerSize(&worst)
	if err != nil {
		return err
	}
	if n > MaxPointerSize {
		return fmt.Errorf("notes are %d bytes, which JSON escapes to %d; a latest.json has room for %d escaped bytes of notes (%s); shorten them; nothing was written",
			len(notes), escapedLen(notes), notesRoom(), notesCost)
	}
	return nil
}

// escapedLen is the bytes of s in a JSON string, quotes aside.
func escapedLen(s string) int {
	b, _ := json.Marshal(s)
	return len(b) - 2
}

// notesRoom is the most escaped bytes of notes the fullest pointer has
// room for: the payload bytes whose base64 stays within [MaxPointerSize]
// less [envelopeOverhead], less the pointer without notes and the
// notes field's name.
func notesRoom() int {
	payload, _ := json.Marshal(worstPointer())
	return (MaxPointerSize-envelopeOverhead)/4*3 - len(payload) - len(`,"notes":""`)
}

// notesCost says what a character of notes costs once escaped.
const notesCost = "a plain ASCII character takes 1 byte; a newline, tab, carriage return, backslash or double quote 2; <, >, &, U+2028 or U+2029 6; other characters their UTF-8 bytes"

// worstPointer is the largest latest.json deploy can sign, notes aside:
// a stable build, a candidate and [manifest.MaxFallbacks] fallbacks, each
// with the longest version an upload accepts (all '<', which JSON escapes
// to 6 bytes each), the longest native bounds, a CRC-32 and a file
// manifest, under names, numbers and times of the greatest length.
func worstPointer() manifest.Latest {
	name := strings.Repeat("a", 64)
	t := time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.UTC)
	l := manifest.Latest{App: name, Channel: name, Sequence: manifest.MaxSequence, Issued: t, Expires: t,
		Build: worstRef(name), Candidate: &manifest.Candidate{Build: worstRef(name), Percent: 100, Rollout: name, Paused: true},
		Settings: manifest.Settings{SelfAssign: true}, By: name,
		Previous: &manifest.Link{Sequence: manifest.MaxSequence, SHA256: strings.Repeat("f", 64)}}
	for range manifest.MaxFallbacks {
		l.Fallbacks = append(l.Fallbacks, worstRef(name))
	}
	return l
}

// worstRef is the largest build reference of app an upload can make.
func worstRef(app string) manifest.BuildRef {
	bound := "999999999.999999999.999999999.999999999"
	sha := strings.Repeat("f", 64)
	return manifest.BuildRef{ID: manifest.BuildID(app, manifest.MaxSequence), Number: manifest.MaxSequence, Version: strings.Repeat("<", MaxVersionLen),
		Bundle: manifest.BundleKey(app, sha), SHA256: sha, Size: manifest.MaxSequence, MinNative: bound, MaxNative: bound,
		CRC32: "ffffffff", FilesSHA256: sha, FilesSize: manifest.MaxFileManifestSize}
}

// checkSizes signs the build record this upload would write, with the
// widest values still unknown (build number, size, file manifest), and
// refuses the upload if it would pass its size limit: verifiers refuse an
// oversized envelope. (Request.Check has bounded latest.json already.)
func (p *Publisher) checkSizes(req Request, uploader string) error {
	ref := worstRef(req.App)
	ref.Version, ref.MinNative, ref.MaxNative = req.Version, req.MinNative, req.MaxNative
	if ref.Version == "" {
		ref.Version = DefaultVersion(ref.Number)
	}
	build := manifest.Build{App: req.App, BuildRef: ref, Uploader: uploader, Created: p.now(), Notes: req.Notes, GitCommit: req.GitCommit}
	env, err := manifest.Sign(manifest.TypeBuild, build, p.Key)
	if err != nil {
		return err
	}
	if n := len(env.Marshal()); n > manifest.MaxBuildSize {
		return fmt.Errorf("the build record would be %d bytes, over the %d bytes that verifiers accept; shorten notes, version or git commit; nothing was uploaded", n, manifest.MaxBuildSize)
	}
	return nil
}
