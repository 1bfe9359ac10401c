package cli

import (
	"path/filepath"
	"testing"
)

// One store, however its URL is spelled, has one identity; other stores
// have others.
func TestStoreIdentity(t *testing.T) {
	dir := t.TempDir()
	s3q := "?region=eu-west-1&endpoint=http://127.0.0.1:7070&path_style=true"
	same := [][]string{
		{"file://" + dir + "/store", "file://" + dir + "/store/", "file://" + dir + "//store", "file://" + dir + "/./store",
			"file:" + dir + "/store", "file:///" + dir + "/store", "file://localhost" + dir + "/store", filepath.Join(dir, "store"), dir + "/x/../store"},
		{"s3://bucket/live" + s3q, "s3://bucket/live/" + s3q, "s3://bucket//live" + s3q, "s3://bucket/live//" + s3q,
			"s3://bucket/live?endpoint=http://127.0.0.1:7070/&region=us-east-1", "s3://BUCKET/live" + s3q},
		{"s3://bucket/live?region=eu-west-1", "s3://bucket/live/"},
		{"s3://bucket", "s3://bucket/", "s3://bucket//"},
	}
	seen := map[string]int{}
	for group, urls := range same {
		var first string
		for _, raw := range urls {
			loc, err := parseStore(raw)
			if err != nil {
				t.Fatalf("parseStore(%q): %v", raw, err)
			}
			id := loc.identity()
			if first == "" {
				first = id
				if g, ok := seen[id]; ok {
					t.Fatalf("%q has the identity %q of group %d", raw, id, g)
				}
				seen[id] = group
			} else if id != first {
				t.Errorf("identity(%q) = %q, want %q", raw, id, first)
			}
		}
	}
}

func TestParseStore(t *testing.T) {
	for raw, wantDir := range map[string]string{
		"file:/srv/store":        "/srv/store",
		"file:///srv/store":      "/srv/store",
		"file:/srv/./a/../store": "/srv/store",
		"/srv/store/":            "/srv/store",
	} {
		loc, err := parseStore(raw)
		if err != nil || loc.dir != filepath.FromSlash(wantDir) {
			t.Errorf("parseStore(%q) = %q, %v; want folder %s", raw, loc.dir, err, wantDir)
		}
	}
	for _, raw := range []string{"ftp://example.com/x", "gopher:/x", "file://relative/path", "file:relative", "file://./store"} {
		if _, err := parseStore(raw); err == nil {
			t.Errorf("parseStore(%q) accepted an unknown scheme or a relative path", raw)
		}
	}
}
