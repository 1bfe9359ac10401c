package publish

import (
	"context"
	"fmt"
	"regexp"
	"strconv"

	"github.com/cartona/deploy/manifest"
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
	return nil
}

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

// checkVersionFree refuses a version that an earlier build of app has
// with other content.
func (p *Publisher) checkVersionFree(ctx context.Context, acl *manifest.ACL, app, version, sha string) error {
	builds, err := ListBuilds(ctx, p.Store, acl, app, func(string, error) {})
	if err != nil {
		return err
	}
	if b := VersionConflict(builds, version, sha); b != nil {
		return fmt.Errorf("version %s is already build %d of %s, with other content; devices tell bundles apart by version, so a version is never reused: give this one a new version (or leave version out for %s<number>)", version, b.Number, app, defaultVersionPrefix)
	}
	return nil
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
