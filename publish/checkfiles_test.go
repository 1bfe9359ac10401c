package publish_test

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/andybalholm/brotli"

	"github.com/cartona/deploy/manifest"
	"github.com/cartona/deploy/publish"
	"github.com/cartona/deploy/store"
)

// CheckFiles checks a build's file manifest and every object it names as
// a device that downloads files would, and names the first file that
// fails, in manifest order, with its rule.
func TestCheckFiles(t *testing.T) {
	js := strings.Repeat("export const answer = 42; // a line of a chunk\n", 400)
	tree := map[string]string{
		"index.html": "<!doctype html><script src=main.js></script>",
		"main.js":    js + "notifyAppReady()", // stored Brotli-encoded
		"copy.js":    js + "notifyAppReady()", // main.js's object
		"tiny.txt":   "x",                     // stored as is
		"z.txt":      "zz",
	}
	brotliOf := func(s string) string {
		var b bytes.Buffer
		w := brotli.NewWriter(&b)
		w.Write([]byte(s))
		w.Close()
		return b.String()
	}
	cases := []struct {
		name   string
		change func(t *testing.T, f *fixture, ref manifest.BuildRef, files map[string]manifest.FileEntry)
		rule   manifest.Rule
		want   string // in the error
	}{
		{"intact", nil, "", ""},
		{"other bytes, same size", func(t *testing.T, f *fixture, ref manifest.BuildRef, files map[string]manifest.FileEntry) {
			f.put(t, fileKey(files["tiny.txt"]), "y")
		}, manifest.RuleFilesMismatch, "file tiny.txt ("},
		{"other bytes, Brotli", func(t *testing.T, f *fixture, ref manifest.BuildRef, files map[string]manifest.FileEntry) {
			f.put(t, fileKey(files["main.js"]), brotliOf(strings.Replace(js, "42", "43", 1)+"notifyAppReady()"))
		}, manifest.RuleFilesMismatch, "file copy.js ("}, // the first entry naming the object
		{"Brotli form longer than its size", func(t *testing.T, f *fixture, ref manifest.BuildRef, files map[string]manifest.FileEntry) {
			// The content, then 16 MiB more: read up to size+1 bytes only.
			f.put(t, fileKey(files["main.js"]), brotliOf(js+"notifyAppReady()"+strings.Repeat("\x00", 16<<20)))
		}, manifest.RuleFilesMismatch, "file copy.js ("},
		{"bytes after the Brotli stream", func(t *testing.T, f *fixture, ref manifest.BuildRef, files map[string]manifest.FileEntry) {
			f.put(t, fileKey(files["main.js"]), brotliOf(js+"notifyAppReady()")+"x")
		}, manifest.RuleFilesMismatch, "does not decode"},
		{"not Brotli", func(t *testing.T, f *fixture, ref manifest.BuildRef, files map[string]manifest.FileEntry) {
			f.put(t, fileKey(files["main.js"]), js)
		}, manifest.RuleFilesMismatch, "does not decode"},
		{"missing", func(t *testing.T, f *fixture, ref manifest.BuildRef, files map[string]manifest.FileEntry) {
			f.store.Delete(context.Background(), fileKey(files["z.txt"]))
		}, manifest.RuleFilesMismatch, "file z.txt (apps/retailer/files/"},
		{"first of two in name order", func(t *testing.T, f *fixture, ref manifest.BuildRef, files map[string]manifest.FileEntry) {
			f.put(t, fileKey(files["z.txt"]), "yy")
			f.put(t, fileKey(files["index.html"]), "<")
		}, manifest.RuleFilesMismatch, "file index.html ("},
		{"manifest changed", func(t *testing.T, f *fixture, ref manifest.BuildRef, files map[string]manifest.FileEntry) {
			f.put(t, manifest.FileManifestKey("retailer", ref.FilesSHA256), `{"app":"retailer","files":[]}`)
		}, manifest.RuleFilesMismatch, "file manifest apps/retailer/files/manifests/"},
		{"manifest missing", func(t *testing.T, f *fixture, ref manifest.BuildRef, files map[string]manifest.FileEntry) {
			f.store.Delete(context.Background(), manifest.FileManifestKey("retailer", ref.FilesSHA256))
		}, manifest.RuleFilesMismatch, "the file manifest is missing"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := newFixture(t, fileStore(t))
			if _, err := f.publisher().Upload(context.Background(), publish.Request{App: "retailer", Dir: writeTree(t, tree)}); err != nil {
				t.Fatal(err)
			}
			ref, fm := f.readBuild(t, "retailer", "production")
			files := map[string]manifest.FileEntry{}
			for _, e := range fm.Files {
				files[e.Name] = e
			}
			if files["main.js"].Encoding != manifest.EncodingBrotli || files["tiny.txt"].Encoding != "" {
				t.Fatalf("encodings %+v, want main.js Brotli and tiny.txt as is", files)
			}
			if c.change != nil {
				c.change(t, f, ref, files)
			}
			// The same build twice, and one without files: each manifest
			// and object is checked once.
			old := ref
			old.FilesSHA256, old.FilesSize = "", 0
			got, err := publish.CheckFiles(context.Background(), f.store, "retailer", []manifest.BuildRef{ref, old, ref})
			if c.rule == "" {
				want := publish.FilesChecked{Manifests: 1, Files: 5, Objects: 4}
				if err != nil || got != want {
					t.Fatalf("CheckFiles = %+v, %v; want %+v", got, err, want)
				}
				return
			}
			var fe *publish.FileError
			if !errors.As(err, &fe) || manifest.RuleOf(err) != c.rule || !strings.Contains(err.Error(), c.want) || !strings.HasPrefix(err.Error(), "build 1: ") {
				t.Fatalf("err = %v, want a file error of rule %s mentioning %q", err, c.rule, c.want)
			}
		})
	}
}

func fileKey(e manifest.FileEntry) string { return manifest.FileKey("retailer", e.SHA256, e.Encoding) }

// put writes an object straight into the store, as someone with store
// credentials could.
func (f *fixture) put(t *testing.T, key, data string) {
	t.Helper()
	if _, err := f.store.Put(context.Background(), key, strings.NewReader(data), store.PutOptions{}); err != nil {
		t.Fatal(err)
	}
}
