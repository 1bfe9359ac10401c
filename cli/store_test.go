package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cartona/deploy/internal/s3test"
	"github.com/cartona/deploy/manifest"
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

// TestMissingS3Store: commands that need a store refuse an S3 store that
// is not there as they refuse a missing folder: exit 6, naming the bucket
// and prefix, saying what is missing. A prefix with a typo has no
// acl.json; a bucket with one does not exist. The tracker does not start.
func TestMissingS3Store(t *testing.T) {
	srv := s3test.Start(t)
	isolate(t)
	srv.Setenv(t)
	status, rootKey, errOut := run(t, []string{"keys", "generate", "key_file=" + filepath.Join(t.TempDir(), "k.key")})
	if status != exitOK {
		t.Fatalf("keys generate: %d %s", status, errOut)
	}
	rootKey = strings.TrimSpace(rootKey)
	noBucket := *srv
	noBucket.Bucket = "no-such-bucket-here"
	cases := []struct {
		name, store, says string
	}{
		{"wrong prefix", srv.URL("nope"), "no store at s3://" + srv.Bucket + "/nope: it has no acl.json; check the bucket and prefix in store=, or create the store with `deploy init`"},
		{"missing bucket", noBucket.URL("prod"), "no store at s3://no-such-bucket-here/prod: the bucket no-such-bucket-here does not exist; check the bucket in store=, or create the bucket"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			for _, args := range [][]string{
				{"verify", "app=shop"},
				{"list", "builds", "app=shop"},
				{"history", "app=shop"},
				{"prune", "app=shop"},
			} {
				args = append(args, "store="+c.store, "root_key="+rootKey)
				status, _, errOut := run(t, args)
				if status != exitUnavailable || !strings.Contains(errOut, c.says) {
					t.Errorf("deploy %s: status %d, stderr:\n%s\nwant status %d and %q", args[0], status, errOut, exitUnavailable, c.says)
				}
			}
			if c.name == "missing bucket" { // serve starts on a store without an ACL yet, as on a local one
				args := []string{"serve", "addr=127.0.0.1:0", "db=sqlite://" + filepath.Join(t.TempDir(), "events.db"), "store=" + c.store, "root_key=" + rootKey}
				if status, _, errOut := run(t, args); status != exitUnavailable || !strings.Contains(errOut, c.says) {
					t.Errorf("deploy serve: status %d, stderr:\n%s\nwant status %d and %q", status, errOut, exitUnavailable, c.says)
				}
			}
			status, out, _ := run(t, []string{"verify", "app=shop", "store=" + c.store, "root_key=" + rootKey, "--json"})
			if status != exitUnavailable || !strings.Contains(out, `"code": "unavailable"`) {
				t.Errorf("verify --json: status %d, stdout:\n%s", status, out)
			}
		})
	}

	// An upload creates no store either, and names the one it found no
	// ACL in.
	www := t.TempDir()
	if err := os.WriteFile(filepath.Join(www, "index.html"), []byte("<html>notifyAppReady</html>"), 0o644); err != nil {
		t.Fatal(err)
	}
	userKey := filepath.Join(t.TempDir(), "u.key")
	if _, err := manifest.GenerateKey(userKey); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ store, says string }{
		{srv.URL("nope"), "s3://" + srv.Bucket + "/nope/acl.json does not exist: the store has no ACL; check store=, or have an administrator create the store with `deploy init`"},
		{noBucket.URL("prod"), "the S3 bucket does not exist"},
	} {
		status, _, errOut := run(t, []string{"upload", "app=shop", "dir=" + www, "store=" + c.store, "root_key=" + rootKey, "key_file=" + userKey})
		if status != exitUnavailable || !strings.Contains(errOut, c.says) {
			t.Errorf("upload to %s: status %d, stderr:\n%s\nwant status %d and %q", c.store, status, errOut, exitUnavailable, c.says)
		}
	}
}
