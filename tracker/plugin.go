package tracker

import (
	"strconv"
	"strings"

	"github.com/cartona/deploy/manifest"
)

// What each version of @capgo/capacitor-updater understands in an update
// answer, read from the plugin's source per release tag; docs/format.md,
// "What each plugin version gets", gives the files and lines.

// pluginVersion is a parsed plugin_version such as "8.51.14". A version
// that does not parse (ok false) is treated as a current plugin.
type pluginVersion struct {
	major, minor, patch int
	ok                  bool
}

// parsePluginVersion reads "MAJOR.MINOR.PATCH", ignoring a leading "v" and
// a pre-release or build suffix ("7.0.38-beta.1").
func parsePluginVersion(s string) pluginVersion {
	s = strings.TrimPrefix(strings.TrimSpace(s), "v")
	if i := strings.IndexAny(s, "-+"); i >= 0 {
		s = s[:i]
	}
	parts := strings.Split(s, ".")
	if len(parts) != 3 {
		return pluginVersion{}
	}
	var n [3]int
	for i, p := range parts {
		v, err := strconv.Atoi(p)
		if err != nil || v < 0 || len(p) > 9 {
			return pluginVersion{}
		}
		n[i] = v
	}
	return pluginVersion{n[0], n[1], n[2], true}
}

// before reports whether v is a known version lower than
// major.minor.patch.
func (v pluginVersion) before(major, minor, patch int) bool {
	if !v.ok {
		return false
	}
	switch {
	case v.major != major:
		return v.major < major
	case v.minor != minor:
		return v.minor < minor
	}
	return v.patch < patch
}

// deltaFrom is, per major version, the first release whose manifest
// download reads a file_name ending in ".br" as Brotli and every other
// file as is (DownloadService.java `endsWith(".br")`, CapgoUpdater.swift
// `hasSuffix(".br")`, on Android and iOS alike). Earlier 6.x and 7.x
// releases Brotli-decompress every manifest file, and 5.x before 5.10.0
// and 4.x have no manifest download: they get the zip.
var deltaFrom = map[int][3]int{5: {5, 10, 0}, 6: {6, 14, 28}, 7: {7, 0, 38}}

// takesManifest reports whether a plugin of version v can be answered
// with a file manifest. An unknown version gets the zip, which every
// version downloads.
func (v pluginVersion) takesManifest() bool {
	if !v.ok || v.major < 5 {
		return false
	}
	from, ok := deltaFrom[v.major]
	return !ok || !v.before(from[0], from[1], from[2])
}

// zipChecksum is the checksum to answer with the zip of ref to a plugin of
// version v on platform ("android", "ios", ...), for a bundle that is not
// Capgo-encrypted (deploy's never are):
//
//   - CRC32 (ref.CRC32, "%08x") for 4.x, 5.x before 5.10.0, 6.x before
//     6.14.28, and 7.0.0 and 7.0.1, which compute only that;
//   - "" for Android 7.0.2 to 7.0.29, which compute nothing for a plain
//     zip and fail any checksum given (fixed in 7.0.30); the plugin then
//     checks nothing;
//   - SHA-256 (ref.SHA256) for every other version, and for one that does
//     not parse.
//
// A build recorded without a CRC32 gets "" where CRC32 is due: every
// plugin skips its check for an empty checksum without a public key.
func zipChecksum(ref manifest.BuildRef, v pluginVersion, platform string) string {
	switch {
	case v.before(5, 10, 0) && v.major <= 5,
		v.major == 6 && v.before(6, 14, 28),
		v.major == 7 && v.before(7, 0, 2):
		return ref.CRC32
	case v.major == 7 && v.before(7, 0, 30) && strings.EqualFold(platform, "android"):
		return ""
	}
	return ref.SHA256
}
