package publish

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"regexp"
	"strconv"
	"time"

	"github.com/cartona/deploy/manifest"
	"github.com/cartona/deploy/store"
)

// defaultVersionPrefix starts every default version: see [DefaultVersion].
const defaultVersionPrefix = "0.0.0-build."

var defaultVersionRE = regexp.MustCompile(`^0\.0\.0-build\.[0-9]+$`)

// DefaultVersion is the version of build n when the upload names none:
// "0.0.0-build.<n>". A native app's version name is never a 0.0.0
// pre-release, so a device is never told it already runs a build because
// its native version has the same name (the plugin compares version
// strings); and under semantic-version precedence, which compares the
// numeric identifier as a number, default versions sort in upload order.
func DefaultVersion(n int64) string { return defaultVersionPrefix + strconv.FormatInt(n, 10) }

// CheckVersion refuses a version given at upload that has the form of
// default versions, which belong to the builds of those numbers.
func CheckVersion(v string) error {
	if defaultVersionRE.MatchString(v) {
		return fmt.Errorf("version %s has the form deploy gives builds that name no version (%sN); leave version out, or pick another", v, defaultVersionPrefix)
	}
	if v == builtinVersion {
		return fmt.Errorf("version %s is the name the Capgo plugin gives the bundle built into the app: a device told to update to it goes back to that bundle instead; pick another version", v)
	}
	return nil
}

// builtinVersion is the Capgo plugin's name for the bundle built into the
// app: an update answer with this version makes it reset to that bundle.
const builtinVersion = "builtin"

// VersionConflict returns the build among builds whose version is version
// but whose content differs from sha256, or nil. A version names one
// content within an app for good: the plugin tells bundles apart by
// version only, so a device that ever ran it would never fetch the other.
func VersionConflict(builds []manifest.Build, version, sha256 string) *manifest.Build {
	for i := range builds {
		if builds[i].Version == version && builds[i].SHA256 != sha256 {
			return &builds[i]
		}
	}
	return nil
}

// VersionTakenError refuses an upload whose version an earlier build of
// the app has (or had: see [VersionClaim]) with other content.
type VersionTakenError struct {
	App, Version string
	// Build is the number of the build record that has the version; 0
	// when only its claim is left (the build was pruned, or its upload
	// stopped after claiming it).
	Build int64
	// SHA256 is the content the version names; Claimed when it was claimed.
	SHA256  string
	Claimed time.Time
	// Unreadable, if set, is why the claim could not be read: it still
	// blocks the version.
	Unreadable string
}

func (e *VersionTakenError) Error() string {
	next := fmt.Sprintf("devices tell bundles apart by version, so a version is never reused: give this one a new version (or leave version out for %s<number>)", defaultVersionPrefix)
	switch {
	case e.Build > 0:
		return fmt.Sprintf("version %s is already build %d of %s, with other content; %s", e.Version, e.Build, e.App, next)
	case e.Unreadable != "":
		return fmt.Sprintf("version %s of %s is claimed at %s, which cannot be read (%s); %s. A claim only blocks its version: if no device ever got it, delete the claim", e.Version, e.App, manifest.VersionKey(e.App, e.Version), e.Unreadable, next)
	}
	return fmt.Sprintf("version %s of %s was taken on %s by other content (bundle sha256 %s), of a build since pruned or an upload that did not finish; %s", e.Version, e.App, e.Claimed.Format(time.RFC3339), e.SHA256, next)
}

// VersionClaim is the content of apps/<app>/versions/<sha256 of
// version>.json ([manifest.VersionKey]): which bundle a version of an app
// names, for good. An upload writes it create-only before the build record,
// so of two uploads of one version with other contents only one gets it,
// and it stays when a prune removes the build record. It is unsigned: it
// can only block a version from being uploaded, never make a device
// install anything (devices never read it).
type VersionClaim struct {
	App     string    `json:"app"`
	Version string    `json:"version"`
	SHA256  string    `json:"sha256"` // of the bundle
	Time    time.Time `json:"time"`
}

// maxClaimSize bounds a version claim read from the store.
const maxClaimSize = 4 << 10

// checkVersionFree refuses a version that an earlier build of app has
// with other content, by its build records (stores from before claims)
// and its claim.
func (p *Publisher) checkVersionFree(ctx context.Context, acl *manifest.ACL, app, version, sha string) error {
	builds, err := ListBuilds(ctx, p.Store, acl, app, func(string, error) {})
	if err != nil {
		return err
	}
	if b := VersionConflict(builds, version, sha); b != nil {
		return &VersionTakenError{App: app, Version: version, Build: b.Number, SHA256: b.SHA256, Claimed: b.Created}
	}
	_, err = p.readClaim(ctx, app, version, sha)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	return err
}

// claimVersion claims version of app for the bundle sha, create-only: a
// claim of the same content already there is fine (the same upload
// again); one of other content is a [*VersionTakenError].
func (p *Publisher) claimVersion(ctx context.Context, app, version, sha string) error {
	data, err := json.Marshal(VersionClaim{App: app, Version: version, SHA256: sha, Time: p.now()})
	if err != nil {
		return err
	}
	key := manifest.VersionKey(app, version)
	_, err = retry(ctx, p.Store.Location(key), func() (struct{}, error) {
		_, err := p.Store.Put(ctx, key, bytes.NewReader(data), store.PutOptions{CreateOnly: true, Size: int64(len(data)), ContentType: "application/json"})
		if !errors.Is(err, fs.ErrExist) {
			return struct{}{}, err
		}
		_, err = p.readClaim(ctx, app, version, sha)
		if errors.Is(err, fs.ErrNotExist) {
			return struct{}{}, fs.ErrExist // deleted meanwhile: claim it again
		}
		return struct{}{}, err
	})
	return err
}

// readClaim reads the claim of version, refusing one of content other
// than sha (or unreadable) with a [*VersionTakenError]; fs.ErrNotExist
// when there is none.
func (p *Publisher) readClaim(ctx context.Context, app, version, sha string) (*VersionClaim, error) {
	data, _, err := store.ReadSmall(ctx, p.Store, manifest.VersionKey(app, version), maxClaimSize)
	if err != nil && !errors.Is(err, store.ErrTooLarge) {
		return nil, err
	}
	var c VersionClaim
	if err == nil {
		err = json.Unmarshal(data, &c)
	}
	if err == nil && (c.App != app || c.Version != version) {
		err = fmt.Errorf("it claims version %q of %s", c.Version, c.App)
	}
	if err != nil {
		return nil, &VersionTakenError{App: app, Version: version, Unreadable: err.Error()}
	}
	if c.SHA256 != sha {
		return nil, &VersionTakenError{App: app, Version: version, SHA256: c.SHA256, Claimed: c.Time}
	}
	return &c, nil
}

var boundRE = regexp.MustCompile(`^[0-9]{1,9}(\.[0-9]{1,9}){0,3}$`)

// CheckNativeRange refuses native bounds that are not 1 to 4 numbers
// joined by '.', or a min_native above max_native (docs/format.md).
func CheckNativeRange(min, max string) error {
	for _, b := range []struct{ name, v string }{{"min_native", min}, {"max_native", max}} {
		if b.v != "" && !boundRE.MatchString(b.v) {
			return fmt.Errorf("%s=%q is not a native version: give 1 to 4 numbers joined by '.', such as %s=2.0.0", b.name, b.v, b.name)
		}
	}
	if min != "" && max != "" && !manifest.NativeFits(manifest.BuildRef{MinNative: min}, max) {
		return fmt.Errorf("min_native %s is above max_native %s; swap them", min, max)
	}
	return nil
}
