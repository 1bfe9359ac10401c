package manifest

import (
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"strings"
)

// The store layout: every key deploy reads or writes, built and parsed here
// only (docs/format.md, "Store layout").
//
//	acl.json
//	apps/<app>/bundles/<sha256>.zip
//	apps/<app>/builds/<number>.json
//	apps/<app>/channels/<channel>/latest.json
//	apps/<app>/channels/<channel>/history/<sequence>.json
//	apps/<app>/files/<sha256>[.<encoding>]
//	apps/<app>/files/manifests/<sha256>.json
//	apps/<app>/files/patches/<from sha256>-<to sha256>.json
//	apps/<app>/versions/<sha256 of the version>.json

// DefaultChannel is the channel of an upload or a device that names none.
const DefaultChannel = "production"

// MaxSequence is the largest sequence, ACL version and build number deploy
// writes: [MaxInt] (2^53-1), the largest integer a verifier decodes. A
// writer refuses to go past it rather than wrap.
const MaxSequence = MaxInt

// ACLKey is the store key of the ACL.
const ACLKey = "acl.json"

// AppsPrefix is the store prefix under which every app's objects live.
const AppsPrefix = "apps/"

// AppPrefix is the store prefix of everything of an app.
func AppPrefix(app string) string { return AppsPrefix + app + "/" }

// BundleKey is the store key of an app's bundle with the given sha256.
func BundleKey(app, sha256 string) string { return AppPrefix(app) + "bundles/" + sha256 + ".zip" }

// BuildsPrefix is the store prefix of an app's build records.
func BuildsPrefix(app string) string { return AppPrefix(app) + "builds/" }

// BuildKey is the store key of an app's build record.
func BuildKey(app string, number int64) string {
	return BuildsPrefix(app) + strconv.FormatInt(number, 10) + ".json"
}

// ParseBuildKey returns the build number of a key made by [BuildKey] for
// app, or false for any other key.
func ParseBuildKey(app, key string) (int64, bool) {
	return parseNumberKey(BuildsPrefix(app), key)
}

// ChannelsPrefix is the store prefix of an app's channels.
func ChannelsPrefix(app string) string { return AppPrefix(app) + "channels/" }

// LatestKey is the store key of a channel's latest.json.
func LatestKey(app, channel string) string {
	return ChannelsPrefix(app) + channel + "/latest.json"
}

// ParseLatestKey returns the app and channel of a key made by [LatestKey]
// ("apps/<app>/channels/<channel>/latest.json"), and false for any other
// key (a history entry) or one whose names are invalid.
func ParseLatestKey(key string) (app, channel string, ok bool) {
	rest, ok := strings.CutPrefix(key, AppsPrefix)
	if !ok {
		return "", "", false
	}
	app, rest, ok = strings.Cut(rest, "/channels/")
	if !ok {
		return "", "", false
	}
	channel, ok = strings.CutSuffix(rest, "/latest.json")
	if !ok || CheckName("app", app) != nil || CheckName("channel", channel) != nil {
		return "", "", false
	}
	return app, channel, true
}

// HistoryPrefix is the store prefix of a channel's history.
func HistoryPrefix(app, channel string) string {
	return ChannelsPrefix(app) + channel + "/history/"
}

// HistoryKey is the store key of the immutable copy of the channel's
// pointer with the given sequence.
func HistoryKey(app, channel string, sequence int64) string {
	return HistoryPrefix(app, channel) + strconv.FormatInt(sequence, 10) + ".json"
}

// ParseHistoryKey returns the sequence of a key made by [HistoryKey] for
// app and channel, or false for any other key.
func ParseHistoryKey(app, channel, key string) (int64, bool) {
	return parseNumberKey(HistoryPrefix(app, channel), key)
}

// FileKey is the store key of one file of a build, by the sha256 of its
// content: encoding "" is the file as is, [EncodingBrotli] its Brotli form.
func FileKey(app, sha256, encoding string) string {
	key := AppPrefix(app) + "files/" + sha256
	if encoding != "" {
		key += "." + encoding
	}
	return key
}

// FileManifestKey is the store key of a file manifest, by the sha256 of its
// bytes.
func FileManifestKey(app, sha256 string) string {
	return AppPrefix(app) + "files/manifests/" + sha256 + ".json"
}

// FilesPatchKey is the store key of the patch from the file manifest
// whose bytes have SHA-256 from to the one whose bytes have SHA-256 to.
func FilesPatchKey(app, from, to string) string {
	return FilesPatchesPrefix(app) + from + "-" + to + ".json"
}

// FilesPatchesPrefix is the store prefix of an app's file manifest patches.
func FilesPatchesPrefix(app string) string { return AppPrefix(app) + "files/patches/" }

// ParseFilesPatchKey returns the digests of a key made by [FilesPatchKey]
// for app, or false for any other key.
func ParseFilesPatchKey(app, key string) (from, to string, ok bool) {
	rest, ok := strings.CutPrefix(key, FilesPatchesPrefix(app))
	if !ok {
		return "", "", false
	}
	rest, ok = strings.CutSuffix(rest, ".json")
	from, to, ok2 := strings.Cut(rest, "-")
	if !ok || !ok2 || !isDigest(from) || !isDigest(to) {
		return "", "", false
	}
	return from, to, true
}

// VersionsPrefix is the store prefix of an app's version claims.
func VersionsPrefix(app string) string { return AppPrefix(app) + "versions/" }

// VersionKey is the store key of the claim of version within app: the
// lowercase hex SHA-256 of the version string, so any version (which may
// hold characters a key may not) has one fixed-length key.
func VersionKey(app, version string) string {
	sum := sha256.Sum256([]byte(version))
	return VersionsPrefix(app) + hex.EncodeToString(sum[:]) + ".json"
}

// parseNumberKey parses prefix + <n> + ".json" with n a decimal from 1 to
// MaxSequence without leading zeros, as the writers make them.
func parseNumberKey(prefix, key string) (int64, bool) {
	rest, ok := strings.CutPrefix(key, prefix)
	if !ok {
		return 0, false
	}
	digits, ok := strings.CutSuffix(rest, ".json")
	if !ok || digits == "" || digits[0] == '0' {
		return 0, false
	}
	n, err := strconv.ParseInt(digits, 10, 64)
	if err != nil || n < 1 || n > MaxSequence || strconv.FormatInt(n, 10) != digits {
		return 0, false
	}
	return n, true
}
