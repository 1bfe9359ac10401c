package tracker

import (
	"testing"

	"github.com/cartona/deploy/manifest"
)

func TestParsePluginVersion(t *testing.T) {
	for s, want := range map[string]pluginVersion{
		"8.51.14":        {8, 51, 14, true},
		"v7.0.38":        {7, 0, 38, true},
		"6.14.28-rc.1":   {6, 14, 28, true},
		" 5.10.0+build":  {5, 10, 0, true},
		"7.0":            {},
		"":               {},
		"a.b.c":          {},
		"1.2.-3":         {},
		"1.2.3.4":        {},
		"9999999999.0.0": {},
	} {
		if got := parsePluginVersion(s); got != want {
			t.Errorf("parsePluginVersion(%q) = %+v, want %+v", s, got, want)
		}
	}
}

// TestZipChecksumWithoutCRC32: a build recorded before CRC32 was recorded
// gets an empty checksum where CRC32 is due, which those plugins do not
// check, rather than a SHA-256 that they would fail.
func TestZipChecksumWithoutCRC32(t *testing.T) {
	ref := manifest.BuildRef{SHA256: "ab"}
	if got := zipChecksum(ref, parsePluginVersion("6.2.0"), "ios"); got != "" {
		t.Errorf("checksum %q, want none", got)
	}
	ref.CRC32 = "0badf00d"
	if got := zipChecksum(ref, parsePluginVersion("6.2.0"), "ios"); got != "0badf00d" {
		t.Errorf("checksum %q, want the CRC32", got)
	}
	if got := zipChecksum(ref, parsePluginVersion("7.0.10"), "ANDROID"); got != "" {
		t.Errorf("Android 7.0.10: checksum %q, want none", got)
	}
}
