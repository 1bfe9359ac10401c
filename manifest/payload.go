package manifest

import (
	"crypto/ed25519"
	"fmt"
	"regexp"
	"time"
)

// AllApps is the app name of a grant that covers every app.
const AllApps = "*"

// ACL is the payload of acl.json, signed by the root key(s): who may publish
// what. Version only grows; a verifier refuses an ACL older than one it saw.
type ACL struct {
	Version int64     `json:"version" yaml:"version"`
	Issued  time.Time `json:"issued" yaml:"issued,omitempty"`
	Users   []User    `json:"users" yaml:"users"`
}

// User is a person or CI job with the public keys that sign for them and
// their grants, by app name ([AllApps] for every app).
type User struct {
	Name   string           `json:"name" yaml:"name"`
	Keys   []string         `json:"keys" yaml:"keys"`
	Grants map[string]Grant `json:"grants,omitempty" yaml:"grants,omitempty"`
}

// Grant is what a user may do with an app. A field left out is false. A
// user may do something when the grant of the app or that of [AllApps]
// allows it: can_upload false for one app does not take away a "*" grant.
type Grant struct {
	CanUpload bool `json:"can_upload,omitempty" yaml:"can_upload"`
	// CanHalt allows signing a [Halt] of the app's channels, and nothing
	// else: the narrow grant of a tracker's key.
	CanHalt bool `json:"can_halt,omitempty" yaml:"can_halt,omitempty"`
}

// User returns the user called name, or nil.
func (a *ACL) User(name string) *User {
	for i := range a.Users {
		if a.Users[i].Name == name {
			return &a.Users[i]
		}
	}
	return nil
}

// Uploader returns the name of the user who holds pub and may upload to
// app, or "" if no one does.
func (a *ACL) Uploader(pub ed25519.PublicKey, app string) string {
	return a.holder(pub, app, func(g Grant) bool { return g.CanUpload })
}

// Halter returns the name of the user who holds pub and may halt a
// candidate of app, or "" if no one does.
func (a *ACL) Halter(pub ed25519.PublicKey, app string) string {
	return a.holder(pub, app, func(g Grant) bool { return g.CanHalt })
}

func (a *ACL) holder(pub ed25519.PublicKey, app string, may func(Grant) bool) string {
	text := FormatPublicKey(pub)
	for _, u := range a.Users {
		for _, k := range u.Keys {
			if k == text && (may(u.Grants[app]) || may(u.Grants[AllApps])) {
				return u.Name
			}
		}
	}
	return ""
}

// Keys returns every valid user key in the ACL.
func (a *ACL) Keys() []ed25519.PublicKey {
	var out []ed25519.PublicKey
	for _, u := range a.Users {
		for _, k := range u.Keys {
			if pub, err := ParsePublicKey(k); err == nil {
				out = append(out, pub)
			}
		}
	}
	return out
}

// Latest is the payload of apps/<app>/channels/<channel>/latest.json (and of
// its immutable copy apps/<app>/channels/<channel>/history/<sequence>.json):
// the signed pointer to what a channel serves.
type Latest struct {
	App      string    `json:"app"`
	Channel  string    `json:"channel"`
	Sequence int64     `json:"sequence"` // grows with each change of the channel
	Issued   time.Time `json:"issued"`
	Expires  time.Time `json:"expires"`
	// Build is the stable build: what every device gets unless it is in the
	// candidate's cohort or its native version does not fit.
	Build     BuildRef   `json:"build"`
	Candidate *Candidate `json:"candidate,omitempty"`
	// Fallbacks are older builds for native versions that Build does not
	// fit, with strictly decreasing numbers; at most [MaxFallbacks].
	Fallbacks []BuildRef `json:"fallbacks,omitempty"`
	Settings  Settings   `json:"settings,omitzero"`
	Notes     string     `json:"notes,omitempty"` // why the channel changed
	By        string     `json:"by,omitempty"`    // the ACL user who signed it
	// Previous links to the pointer this one replaced, so that the
	// channel's history can be checked for gaps.
	Previous *Link `json:"previous,omitempty"`

	// Halted is set by the verifier when the pointer came wrapped in a
	// [Halt]: this Latest is then the wrapped pointer without its
	// candidate, with the halt's sequence.
	Halted *Halt `json:"-"`
}

// Candidate is a build offered to a share of a channel's devices (a staged
// rollout). A device is in the cohort when [Cohort] of the rollout is below
// Percent*100.
type Candidate struct {
	Build   BuildRef `json:"build"`
	Percent int64    `json:"percent"` // 0 to 100
	Rollout string   `json:"rollout"` // a name; a new rollout id draws new cohorts
	Paused  bool     `json:"paused,omitempty"`
}

// Settings are a channel's signed settings.
type Settings struct {
	// SelfAssign lets devices pick this channel themselves (Capgo's
	// setChannel).
	SelfAssign bool `json:"self_assign,omitempty"`
}

// Link names an earlier envelope of a channel: its sequence and the
// lowercase hex SHA-256 of its bytes as stored in the history.
type Link struct {
	Sequence int64  `json:"sequence"`
	SHA256   string `json:"sha256"`
}

// Halt is the payload of an envelope that stops a channel's candidate. It
// is signed by a key with can_halt and wraps, whole, the uploader-signed
// pointer it halts; its Sequence is that pointer's plus one. A verifier
// accepts it as the channel's pointer minus its candidate, so a halt key
// can only take a build away, never offer one (docs/format.md, "Halt").
type Halt struct {
	App      string    `json:"app"`
	Channel  string    `json:"channel"`
	Sequence int64     `json:"sequence"`
	Issued   time.Time `json:"issued"`
	Reason   string    `json:"reason,omitempty"`
	Pointer  Envelope  `json:"pointer"`  // the halted latest.json envelope
	Previous Link      `json:"previous"` // the halted pointer's sequence and digest
}

// MaxFallbacks is the most fallback builds a pointer may list.
const MaxFallbacks = 8

// BuildRef is what a device needs to fetch and check a build.
type BuildRef struct {
	ID        string `json:"id"`     // "<app>-<number>", unique in a store
	Number    int64  `json:"number"` // 1, 2, 3... per app
	Version   string `json:"version"`
	Bundle    string `json:"bundle"` // store key of the zip
	SHA256    string `json:"sha256"` // lowercase hex of the zip's bytes
	Size      int64  `json:"size"`
	MinNative string `json:"min_native,omitempty"` // lowest native version it runs on
	MaxNative string `json:"max_native,omitempty"` // highest native version it runs on
	// CRC32 is the zip's CRC-32 (IEEE) as 8 lowercase hex digits: the
	// checksum that older Capgo plugins compare.
	CRC32 string `json:"crc32,omitempty"`
	// FilesSHA256 and FilesSize name the build's file manifest
	// (apps/<app>/files/manifests/<FilesSHA256>.json), if it has one.
	FilesSHA256 string `json:"files_sha256,omitempty"`
	FilesSize   int64  `json:"files_size,omitempty"`
}

// Build is the payload of apps/<app>/builds/<number>.json, an immutable
// record of one upload.
type Build struct {
	App string `json:"app"`
	BuildRef
	Uploader  string    `json:"uploader"`
	Created   time.Time `json:"created"`
	Notes     string    `json:"notes,omitempty"`
	GitCommit string    `json:"git_commit,omitempty"`
}

// isDigest reports whether s is a SHA-256 digest as written: 64 lowercase
// hex digits.
func isDigest(s string) bool {
	if len(s) != 64 {
		return false
	}
	for i := range len(s) {
		if c := s[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// CheckName reports whether s is a valid app, channel or user name:
// 1 to 64 of a-z, 0-9, '.', '_', '-', starting with a letter or digit.
func CheckName(kind, s string) error {
	if !isName(s) {
		return fmt.Errorf("invalid %s name %q: use 1 to 64 lowercase letters, digits, '.', '_' or '-', starting with a letter or digit", kind, s)
	}
	return nil
}

// isName reports whether s matches ^[a-z0-9][a-z0-9._-]{0,63}$, without
// a regular expression: trackers check two names on every request.
func isName(s string) bool {
	if len(s) == 0 || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || i > 0 && (c == '.' || c == '_' || c == '-')) {
			return false
		}
	}
	return true
}

// BuildID is the ID of an app's build number n.
func BuildID(app string, n int64) string { return fmt.Sprintf("%s-%d", app, n) }

var (
	crc32RE = regexp.MustCompile(`^[0-9a-f]{8}$`)
	boundRE = regexp.MustCompile(`^[0-9]{1,9}(\.[0-9]{1,9}){0,3}$`)
)

// check validates a build reference against the layout: the bundle must be
// the content-addressed key of its own sha256 within app.
func (b BuildRef) check(app string) error {
	switch {
	case !isDigest(b.SHA256):
		return fmt.Errorf("sha256 %q is not 64 lowercase hex digits", b.SHA256)
	case b.Size <= 0:
		return fmt.Errorf("size %d is not positive", b.Size)
	case b.Bundle != BundleKey(app, b.SHA256):
		return fmt.Errorf("bundle %q is not %q", b.Bundle, BundleKey(app, b.SHA256))
	case b.Number <= 0 || b.ID != BuildID(app, b.Number):
		return fmt.Errorf("build id %q does not match number %d", b.ID, b.Number)
	case b.Version == "":
		return fmt.Errorf("build %s has no version", b.ID)
	}
	return b.checkExtra()
}

// checkExtra validates the optional fields of a build reference.
func (b BuildRef) checkExtra() error {
	for _, v := range []string{b.MinNative, b.MaxNative} {
		if v != "" && !boundRE.MatchString(v) {
			return fmt.Errorf("build %s: native version %q is not 1 to 4 numbers of 1 to 9 digits joined by '.'", b.ID, v)
		}
	}
	switch {
	case b.MinNative != "" && b.MaxNative != "" && compareNumeric(b.MinNative, b.MaxNative) > 0:
		return fmt.Errorf("build %s: min_native %s is above max_native %s", b.ID, b.MinNative, b.MaxNative)
	case b.CRC32 != "" && !crc32RE.MatchString(b.CRC32):
		return fmt.Errorf("build %s: crc32 %q is not 8 lowercase hex digits", b.ID, b.CRC32)
	case (b.FilesSHA256 == "") != (b.FilesSize == 0):
		return fmt.Errorf("build %s: files_sha256 and files_size go together", b.ID)
	case b.FilesSHA256 != "" && !isDigest(b.FilesSHA256):
		return fmt.Errorf("build %s: files_sha256 %q is not 64 lowercase hex digits", b.ID, b.FilesSHA256)
	case b.FilesSize > MaxFileManifestSize:
		return fmt.Errorf("build %s: files_size %d is over the %d bytes a verifier reads", b.ID, b.FilesSize, MaxFileManifestSize)
	}
	return nil
}

// check validates a pointer's fields beyond its signature: every build
// reference, the candidate, the fallbacks and the link.
func (l *Latest) check() error {
	if err := l.Build.check(l.App); err != nil {
		return err
	}
	if c := l.Candidate; c != nil {
		if err := c.Build.check(l.App); err != nil {
			return fmt.Errorf("candidate: %w", err)
		}
		if c.Percent > 100 {
			return fmt.Errorf("candidate percent %d is over 100", c.Percent)
		}
		if !isName(c.Rollout) {
			return fmt.Errorf("candidate rollout %q is not a name", c.Rollout)
		}
	}
	if len(l.Fallbacks) > MaxFallbacks {
		return fmt.Errorf("%d fallback builds, at most %d", len(l.Fallbacks), MaxFallbacks)
	}
	for i, f := range l.Fallbacks {
		if err := f.check(l.App); err != nil {
			return fmt.Errorf("fallback: %w", err)
		}
		if i > 0 && f.Number >= l.Fallbacks[i-1].Number {
			return fmt.Errorf("fallback builds are not listed by decreasing number")
		}
	}
	if p := l.Previous; p != nil && (p.Sequence >= l.Sequence || !isDigest(p.SHA256)) {
		return fmt.Errorf("previous: sequence %d is not below %d, or sha256 %q is not 64 lowercase hex digits", p.Sequence, l.Sequence, p.SHA256)
	}
	return nil
}

// check applies the ACL's rules beyond decoding: version at least 1, and
// [ACL.Validate].
func (a *ACL) check() error {
	if a.Version < 1 {
		return fmt.Errorf("version %d", a.Version)
	}
	return a.Validate()
}
