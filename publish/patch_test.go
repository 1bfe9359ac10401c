package publish_test

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/cartona/deploy/manifest"
	"github.com/cartona/deploy/publish"
	"github.com/cartona/deploy/store"
)

func TestUploadWritesFilesPatches(t *testing.T) {
	eachStore(t, testUploadWritesFilesPatches)
}

// uploads uploads version(n) to channel for each n from first to last,
// and returns the builds as the channel names them.
func (f *fixture) uploads(t *testing.T, channel string, first, last int) []manifest.BuildRef {
	t.Helper()
	var refs []manifest.BuildRef
	for n := first; n <= last; n++ {
		f.upload(t, channel, version(n))
		ref, _ := f.readBuild(t, "retailer", channel)
		refs = append(refs, ref)
	}
	return refs
}

// checkPatch checks that the stored patch from base's file manifest makes
// target's, as a device applies it, and returns its size.
func (f *fixture) checkPatch(t *testing.T, base, target manifest.BuildRef) int64 {
	t.Helper()
	patch := f.get(t, manifest.FilesPatchKey("retailer", base.FilesSHA256, target.FilesSHA256))
	_, got, err := manifest.ApplyFilesPatch(target, "retailer", f.fileManifest(t, "retailer", base.FilesSHA256), patch)
	if err != nil || !bytes.Equal(got, f.fileManifest(t, "retailer", target.FilesSHA256)) {
		t.Fatalf("patch from build %d to build %d: %v", base.Number, target.Number, err)
	}
	return int64(len(patch))
}

func testUploadWritesFilesPatches(t *testing.T, newStore func(t *testing.T) store.Store) {
	f := newFixture(t, newStore(t))
	refs := f.uploads(t, "production", 1, 3)
	res := f.upload(t, "production", version(4))
	ref4, _ := f.readBuild(t, "retailer", "production")

	// A patch from each build the channel pointed at, each making build 4's
	// manifest from its base as a device checks it.
	var patched int64
	for _, ref := range refs {
		patched += f.checkPatch(t, ref, ref4)
	}
	if res.NewBytes != res.Size+res.NewFileBytes+patched {
		t.Fatalf("new bytes %d, want the bundle's %d, the files' %d and the patches' %d", res.NewBytes, res.Size, res.NewFileBytes, patched)
	}

	// A base whose bytes no longer match its signed digest gets no patch;
	// the upload goes on.
	ctx := context.Background()
	bad := []byte(strings.Replace(string(f.fileManifest(t, "retailer", ref4.FilesSHA256)), "retailer", "retailex", 1))
	if _, err := f.store.Put(ctx, manifest.FileManifestKey("retailer", ref4.FilesSHA256), bytes.NewReader(bad), store.PutOptions{Size: int64(len(bad))}); err != nil {
		t.Fatal(err)
	}
	f.upload(t, "production", version(5))
	ref5, _ := f.readBuild(t, "retailer", "production")
	if _, _, err := f.store.Get(ctx, manifest.FilesPatchKey("retailer", ref4.FilesSHA256, ref5.FilesSHA256)); err == nil {
		t.Fatal("a patch was made from a base that does not match its signed digest")
	}
	f.get(t, manifest.FilesPatchKey("retailer", refs[2].FilesSHA256, ref5.FilesSHA256))
}

// A build promoted to a channel gets patches from the builds that channel
// served, so its devices fetch a patch, not the whole manifest.
func TestPromoteWritesFilesPatches(t *testing.T) {
	f := newFixture(t, fileStore(t))
	prod := f.uploads(t, "production", 1, 2)
	beta := f.uploads(t, "beta", 3, 3)[0]
	if _, err := f.publisher().Change(context.Background(), "retailer", "production", publish.Promote(beta), false); err != nil {
		t.Fatal(err)
	}
	for _, ref := range prod {
		f.checkPatch(t, ref, beta)
	}
}

// The lease, which names every file of the build, is written once for all
// the patches of an upload, not once a patch.
func TestPatchesAreLeasedAtOnce(t *testing.T) {
	f := newFixture(t, fileStore(t))
	leaseWrites := func(n int) int {
		writes := 0
		p := f.publisher()
		p.Store = &hookStore{Store: f.store, afterPut: func(key string) {
			if strings.Contains(key, "/uploads/") {
				writes++
			}
		}}
		if _, err := p.Upload(context.Background(), publish.Request{App: "retailer", Dir: writeTree(t, version(n))}); err != nil {
			t.Fatal(err)
		}
		return writes
	}
	leaseWrites(1)
	one := leaseWrites(2) // a patch from build 1
	leaseWrites(3)
	if three := leaseWrites(4); three != one {
		t.Fatalf("an upload with 3 patches wrote its lease %d times, one with 1 patch %d times", three, one)
	}
}

// TestNoPatchThatDoesNotPay uploads a build whose every file changed: the
// patch would be about as large as the manifest it makes, so none is
// written, and the upload counts none.
func TestNoPatchThatDoesNotPay(t *testing.T) {
	f := newFixture(t, fileStore(t))
	tree := func(n int) map[string]string {
		files := map[string]string{"index.html": "notifyAppReady()"}
		for i := range 200 { // a manifest over 16 KiB
			files[fmt.Sprintf("js/chunk-%03d.js", i)] = fmt.Sprintf("build %d chunk %d", n, i)
		}
		return files
	}
	first := f.upload(t, "production", tree(1))
	ref1, _ := f.readBuild(t, "retailer", "production")
	res := f.upload(t, "production", tree(2))
	ref2, _ := f.readBuild(t, "retailer", "production")
	if first.Number == res.Number {
		t.Fatal("the second tree was not a new build")
	}
	if _, err := f.store.Stat(context.Background(), manifest.FilesPatchKey("retailer", ref1.FilesSHA256, ref2.FilesSHA256)); err == nil {
		t.Fatal("a patch was written for a build whose every file changed")
	}
	if res.NewBytes != res.Size+res.NewFileBytes {
		t.Fatalf("new bytes %d, want the bundle's %d and the files' %d only", res.NewBytes, res.Size, res.NewFileBytes)
	}
}
