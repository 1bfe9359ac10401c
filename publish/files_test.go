package publish_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/andybalholm/brotli"

	"github.com/cartona/deploy/manifest"
	"github.com/cartona/deploy/publish"
	"github.com/cartona/deploy/store"
	"github.com/cartona/deploy/store/file"
)

// readBuild checks the channel, its build record and its file manifest as
// a device would, and returns the build and its files.
func (f *fixture) readBuild(t *testing.T, app, channel string) (manifest.BuildRef, *manifest.FileManifest) {
	t.Helper()
	l := f.verifyChannel(t, app, channel)
	acl, err := f.trust.VerifyACL(f.get(t, manifest.ACLKey), 0)
	if err != nil {
		t.Fatal(err)
	}
	b, err := manifest.VerifyBuild(acl, f.get(t, manifest.BuildKey(app, l.Build.Number)), app)
	if err != nil {
		t.Fatalf("build record: %v", err)
	}
	if b.BuildRef != l.Build {
		t.Fatalf("build record %+v differs from the pointer's %+v", b.BuildRef, l.Build)
	}
	if want := fmt.Sprintf("%08x", crc32.ChecksumIEEE(f.get(t, l.Build.Bundle))); l.Build.CRC32 != want {
		t.Fatalf("crc32 %q, the zip's is %q", l.Build.CRC32, want)
	}
	fm, _, err := manifest.ReadFileManifest(l.Build, app, f.get(t, manifest.FileManifestKey(app, l.Build.FilesSHA256)))
	if err != nil {
		t.Fatalf("file manifest: %v", err)
	}
	return l.Build, fm
}

// fileContent downloads an entry's object as a device does: decompressed
// when Brotli, then checked with VerifyFile.
func (f *fixture) fileContent(t *testing.T, app string, e manifest.FileEntry) []byte {
	t.Helper()
	data := f.get(t, manifest.FileKey(app, e.SHA256, e.Encoding))
	if e.Encoding == manifest.EncodingBrotli {
		var err error
		if data, err = io.ReadAll(brotli.NewReader(bytes.NewReader(data))); err != nil {
			t.Fatalf("%s: %v", e.Name, err)
		}
	}
	if err := manifest.VerifyFile(e, bytes.NewReader(data)); err != nil {
		t.Fatal(err)
	}
	return data
}

func TestUploadStoresEachFileOnce(t *testing.T) {
	eachStore(t, testUploadStoresEachFileOnce)
}

func testUploadStoresEachFileOnce(t *testing.T, newStore func(t *testing.T) store.Store) {
	f := newFixture(t, newStore(t))
	ctx := context.Background()
	js := strings.Repeat("export const answer = 42; // a line of a chunk\n", 400)
	tree := map[string]string{
		"index.html":      "<!doctype html><script src=main.js></script>",
		"main.js":         js + "notifyAppReady()",
		"copy.js":         js + "notifyAppReady()", // same bytes as main.js
		"logo.png":        strings.Repeat("\x89PNG", 500),
		"fonts/a.woff.br": strings.Repeat("already compressed? the name says so", 10),
		"tiny.txt":        "x",
		"small.js":        strings.Repeat("let x = 1;\n", 300), // compressible, but under 4 KiB
	}
	res, err := f.publisher().Upload(ctx, publish.Request{App: "retailer", Dir: writeTree(t, tree)})
	if err != nil {
		t.Fatal(err)
	}
	ref, fm := f.readBuild(t, "retailer", "production")
	if len(fm.Files) != len(tree) {
		t.Fatalf("manifest lists %d files, want %d", len(fm.Files), len(tree))
	}
	want := map[string]string{"main.js": "br", "copy.js": "br", "logo.png": "", "fonts/a.woff.br": "br", "tiny.txt": "", "small.js": ""}
	for _, e := range fm.Files {
		if string(f.fileContent(t, "retailer", e)) != tree[e.Name] {
			t.Fatalf("%s: content differs", e.Name)
		}
		if w, ok := want[e.Name]; ok && e.Encoding != w {
			t.Errorf("%s: encoding %q, want %q", e.Name, e.Encoding, w)
		}
		// Brotli only where smaller, unless the name ends in .br.
		if e.Encoding == "br" && !strings.HasSuffix(e.Name, ".br") {
			if br := int64(len(f.get(t, manifest.FileKey("retailer", e.SHA256, e.Encoding)))); br >= e.Size {
				t.Errorf("%s: stored Brotli-encoded in %d bytes, not smaller than its %d", e.Name, br, e.Size)
			}
		}
	}
	// The manifest is stored in its gzip form, smaller than its bytes.
	if stored := f.get(t, manifest.FileManifestKey("retailer", ref.FilesSHA256)); !bytes.HasPrefix(stored, []byte{0x1f, 0x8b}) || int64(len(stored)) >= ref.FilesSize {
		t.Errorf("file manifest stored in %d bytes starting %x, want its gzip form, under its %d bytes", len(stored), stored[:2], ref.FilesSize)
	}
	// main.js and copy.js share one object; 6 contents in all.
	if res.NewFiles != 6 || ref.FilesSHA256 == "" {
		t.Fatalf("new files %d, want 6 (files %s)", res.NewFiles, ref.FilesSHA256)
	}
	for _, k := range f.keys(t) {
		if strings.Contains(k, "/uploads/") || strings.HasSuffix(k, "prune.json") {
			t.Fatalf("%s left behind after the upload", k)
		}
	}

	// A one-line change: only that file's object is new.
	tree["main.js"] = strings.Replace(tree["main.js"], "42", "43", 1)
	res2, err := f.publisher().Upload(ctx, publish.Request{App: "retailer", Dir: writeTree(t, tree)})
	if err != nil {
		t.Fatal(err)
	}
	if res2.NewFiles != 1 {
		t.Fatalf("second upload wrote %d file objects, want 1", res2.NewFiles)
	}
	if res2.NewFileBytes >= res.NewFileBytes/2 || res2.NewBytes <= res2.NewFileBytes {
		t.Fatalf("second upload: %d new file bytes, %d new bytes; first %d file bytes", res2.NewFileBytes, res2.NewBytes, res.NewFileBytes)
	}
	_, fm2 := f.readBuild(t, "retailer", "production")
	for _, e := range fm2.Files {
		if string(f.fileContent(t, "retailer", e)) != tree[e.Name] {
			t.Fatalf("v2 %s: content differs", e.Name)
		}
	}
}

func TestUploadReplacesABrokenFileObject(t *testing.T) {
	f := newFixture(t, fileStore(t))
	ctx := context.Background()
	tree := map[string]string{"index.html": "<!doctype html>notifyAppReady", "a.png": strings.Repeat("P", 100)}
	if _, err := f.publisher().Upload(ctx, publish.Request{App: "retailer", Dir: writeTree(t, tree)}); err != nil {
		t.Fatal(err)
	}
	_, fm := f.readBuild(t, "retailer", "production")
	e := fm.Files[0] // a.png, stored as is
	if _, err := f.store.Put(ctx, manifest.FileKey("retailer", e.SHA256, ""), strings.NewReader("short"), store.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	tree["index.html"] += "v2"
	if _, err := f.publisher().Upload(ctx, publish.Request{App: "retailer", Dir: writeTree(t, tree)}); err != nil {
		t.Fatal(err)
	}
	_, fm = f.readBuild(t, "retailer", "production")
	for _, e := range fm.Files {
		f.fileContent(t, "retailer", e)
	}
}

// batchStore records the order of a file store's writes: direct Puts, and
// a batch's staged Puts and Commit. failCommit makes Commit fail.
type batchStore struct {
	*file.Store
	mu         sync.Mutex
	events     []string
	failCommit bool
}

func (s *batchStore) log(e string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.events = append(s.events, e)
}

func (s *batchStore) Put(ctx context.Context, key string, r io.Reader, opt store.PutOptions) (store.Info, error) {
	s.log("put " + key)
	return s.Store.Put(ctx, key, r, opt)
}

func (s *batchStore) NewBatch() store.Batch { return &recordedBatch{s.Store.NewBatch(), s} }

type recordedBatch struct {
	store.Batch
	s *batchStore
}

func (b *recordedBatch) Put(ctx context.Context, key string, r io.Reader, opt store.PutOptions) (store.Info, error) {
	b.s.log("stage " + key)
	return b.Batch.Put(ctx, key, r, opt)
}

func (b *recordedBatch) Commit(ctx context.Context) error {
	b.s.log("commit")
	if b.s.failCommit {
		return errors.New("disk full")
	}
	return b.Batch.Commit(ctx)
}

// File objects go through one batch, committed (durable) before the file
// manifest that names them is written; a failed commit publishes nothing.
func TestFileObjectsAreCommittedBeforeTheirManifest(t *testing.T) {
	fs, err := file.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	s := &batchStore{Store: fs}
	f := newFixture(t, s)
	tree := map[string]string{"index.html": "<!doctype html>", "main.js": strings.Repeat("notifyAppReady(); ", 100), "a.svg": "<svg/>"}
	if _, err := f.publisher().Upload(context.Background(), publish.Request{App: "retailer", Dir: writeTree(t, tree)}); err != nil {
		t.Fatal(err)
	}
	staged, committed := 0, -1
	for i, e := range s.events {
		switch {
		case strings.HasPrefix(e, "stage "):
			staged++
			if committed >= 0 {
				t.Fatalf("%s staged after the commit", e)
			}
		case e == "commit":
			committed = i
		case strings.HasPrefix(e, "put ") && strings.Contains(e, "/files/manifests/"):
			if committed < 0 || committed > i {
				t.Fatalf("the file manifest was written before the file objects were committed: %v", s.events)
			}
		case strings.HasPrefix(e, "put ") && strings.Contains(e, "/files/"):
			t.Fatalf("a file object was written outside the batch: %s", e)
		}
	}
	if staged != 3 || committed < 0 {
		t.Fatalf("%d objects staged, commit at %d; want 3 staged and a commit", staged, committed)
	}
	f.readBuild(t, "retailer", "production")

	before := f.keys(t)
	s.failCommit = true
	tree["main.js"] += "// v2"
	if _, err := f.publisher().Upload(context.Background(), publish.Request{App: "retailer", Dir: writeTree(t, tree)}); err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Fatalf("upload with a failing commit: %v", err)
	}
	for _, k := range diffKeys(before, f.keys(t)) {
		if !strings.Contains(k, "/bundles/") { // an unreferenced zip, for prune
			t.Fatalf("a failed commit left %s", k)
		}
	}
	if ref, _ := f.readBuild(t, "retailer", "production"); ref.Number != 1 {
		t.Fatalf("the channel moved to build %d after a failed upload", ref.Number)
	}
}

// Each long step reports its progress, ending at its total: bytes zipped,
// bundle bytes read for the store, and files stored (two with the same
// content count twice), on both stores.
func TestUploadReportsProgress(t *testing.T) {
	eachStore(t, func(t *testing.T, newStore func(t *testing.T) store.Store) {
		f := newFixture(t, newStore(t))
		tree := map[string]string{"index.html": "<!doctype html>", "main.js": strings.Repeat("notifyAppReady(); ", 20000), "copy.js": "same", "copy2.js": "same"}
		for i := range 40 {
			tree[fmt.Sprintf("svg/%02d.svg", i)] = fmt.Sprintf("<svg id=%d/>", i)
		}
		last := map[string]publish.Progress{}
		var order []string
		req := publish.Request{App: "retailer", Dir: writeTree(t, tree), Progress: func(p publish.Progress) {
			prev, seen := last[p.Step]
			if !seen {
				order = append(order, p.Step)
			}
			if p.Done < prev.Done || p.Done > p.Total || seen && p.Total != prev.Total {
				t.Errorf("%s: %d of %d after %d of %d", p.Step, p.Done, p.Total, prev.Done, prev.Total)
			}
			last[p.Step] = p
		}}
		res, err := f.publisher().Upload(context.Background(), req)
		if err != nil {
			t.Fatal(err)
		}
		if want := []string{"zipping", "uploading the bundle", "uploading the files"}; !slices.Equal(order, want) {
			t.Fatalf("steps reported %q, want %q", order, want)
		}
		for step, total := range map[string]int64{"uploading the bundle": res.Size, "uploading the files": int64(len(tree))} {
			if p := last[step]; p.Done != total || p.Total != total || p.Files != (step == "uploading the files") {
				t.Errorf("%s ended at %+v, want %d of %d", step, p, total, total)
			}
		}
		if p := last["zipping"]; p.Done != p.Total || p.Total < 20000*18 {
			t.Errorf("zipping ended at %+v", p)
		}
	})
}
