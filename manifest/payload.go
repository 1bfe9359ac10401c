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

// Grant is what a user may do with an app.
type Grant struct {
	CanUpload bool `json:"can_upload" yaml:"can_upload"`
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
	text := FormatPublicKey(pub)
	for _, u := range a.Users {
		for _, k := range u.Keys {
			if k == text && (u.Grants[app].CanUpload || u.Grants[AllApps].CanUpload) {
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

// Latest is the payload of apps/<app>/channels/<channel>/latest.json: the
// signed pointer to a channel's current build.
type Latest struct {
	App      string    `json:"app"`
	Channel  string    `json:"channel"`
	Sequence int64     `json:"sequence"` // grows with each change of the channel
	Issued   time.Time `json:"issued"`
	Expires  time.Time `json:"expires"`
	Build    BuildRef  `json:"build"`
}

// BuildRef is what a device needs to fetch and check a build.
type BuildRef struct {
	ID        string `json:"id"`     // "<app>-<number>", unique in a store
	Number    int64  `json:"number"` // 1, 2, 3... per app
	Version   string `json:"version"`
	Bundle    string `json:"bundle"` // store key of the zip
	SHA256    string `json:"sha256"` // lowercase hex of the zip's bytes
	Size      int64  `json:"size"`
	MinNative string `json:"min_native,omitempty"`
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

var (
	nameRE   = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,63}$`)
	sha256RE = regexp.MustCompile(`^[0-9a-f]{64}$`)
)

// CheckName reports whether s is a valid app, channel or user name:
// 1 to 64 of a-z, 0-9, '.', '_', '-', starting with a letter or digit.
func CheckName(kind, s string) error {
	if !nameRE.MatchString(s) {
		return fmt.Errorf("invalid %s name %q: use 1 to 64 lowercase letters, digits, '.', '_' or '-', starting with a letter or digit", kind, s)
	}
	return nil
}

// BundleKey is the store key of an app's bundle with the given sha256.
func BundleKey(app, sha256 string) string { return "apps/" + app + "/bundles/" + sha256 + ".zip" }

// BuildKey is the store key of an app's build record.
func BuildKey(app string, number int64) string {
	return fmt.Sprintf("apps/%s/builds/%d.json", app, number)
}

// BuildsPrefix is the store prefix of an app's build records.
func BuildsPrefix(app string) string { return "apps/" + app + "/builds/" }

// LatestKey is the store key of a channel's latest.json.
func LatestKey(app, channel string) string {
	return "apps/" + app + "/channels/" + channel + "/latest.json"
}

// ChannelsPrefix is the store prefix of an app's channels.
func ChannelsPrefix(app string) string { return "apps/" + app + "/channels/" }

// ACLKey is the store key of the ACL.
const ACLKey = "acl.json"

// BuildID is the ID of an app's build number n.
func BuildID(app string, n int64) string { return fmt.Sprintf("%s-%d", app, n) }

// check validates a build reference against the layout: the bundle must be
// the content-addressed key of its own sha256 within app.
func (b BuildRef) check(app string) error {
	switch {
	case !sha256RE.MatchString(b.SHA256):
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
	return nil
}
