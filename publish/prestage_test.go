package publish_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"testing"

	"github.com/cartona/deploy/manifest"
	"github.com/cartona/deploy/store"
	"github.com/cartona/deploy/store/file"
)

// listHookStore is a file store, so an upload stages its file objects
// while zipping, with hooks on the listings of the app's file objects
// once armed: after the first, the one the staging plans from, and before
// the second, the one the upload takes under its lease.
type listHookStore struct {
	*file.Store
	armed      bool
	n          int
	afterFirst func(listed []store.Info)
	beforeNext func()
}

func (s *listHookStore) List(ctx context.Context, prefix string) ([]store.Info, error) {
	files := s.armed && prefix == manifest.FileKey("retailer", "", "")
	if files {
		s.n++
		if s.n == 2 && s.beforeNext != nil {
			s.beforeNext()
		}
	}
	infos, err := s.Store.List(ctx, prefix)
	if files && s.n == 1 && err == nil && s.afterFirst != nil {
		s.afterFirst(infos)
	}
	return infos, err
}

func newListHookStore(t *testing.T) *listHookStore {
	fs, err := file.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return &listHookStore{Store: fs}
}

// File objects staged while the build is zipped, perhaps before the
// upload's lease is written, become visible only after it.
func TestStagedObjectsAppearAfterTheLease(t *testing.T) {
	fs, err := file.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	s := &batchStore{Store: fs}
	f := newFixture(t, s)
	f.upload(t, "production", version(1))
	lease, staged, commit := -1, 0, -1
	for i, e := range s.events {
		switch {
		case lease < 0 && strings.Contains(e, "/uploads/"):
			lease = i
		case strings.HasPrefix(e, "stage ") && strings.Contains(e, "/files/"):
			staged++
		case e == "commit":
			commit = i
		}
	}
	if staged != 4 || lease < 0 || commit < lease {
		t.Fatalf("%d objects staged, lease written at %d, commit at %d; want 4 staged, committed after the lease: %v", staged, lease, commit, s.events)
	}
	f.checkDownloads(t, 1)
}

// A prune that removes objects after the staging listed them, and before
// the upload's lease, costs nothing: the upload writes them again.
func TestStagingSurvivesAPruneBeforeTheLease(t *testing.T) {
	s := newListHookStore(t)
	f := newFixture(t, s)
	f.upload(t, "production", version(1))
	removed := 0
	s.armed, s.afterFirst = true, func(listed []store.Info) {
		for _, in := range listed {
			if err := s.Store.Delete(context.Background(), in.Key); err != nil {
				t.Error(err)
			}
			removed++
		}
	}
	res := f.upload(t, "production", version(2))
	if removed == 0 {
		t.Fatal("the second upload did not list the store's file objects before its lease")
	}
	if res.NewFiles != res.Files {
		t.Errorf("wrote %d file objects of %d after all were removed", res.NewFiles, res.Files)
	}
	f.checkDownloads(t, 2)
}

// An object another upload writes after this one staged it is not
// counted as this upload's.
func TestStagingCountsOnlyWhatItWrote(t *testing.T) {
	s := newListHookStore(t)
	f := newFixture(t, s)
	f.upload(t, "production", version(1))
	v2 := version(2)
	sum := sha256.Sum256([]byte(v2["2.js"]))
	s.armed, s.beforeNext = true, func() {
		if _, err := s.Store.Put(context.Background(), manifest.FileKey("retailer", hex.EncodeToString(sum[:]), ""), strings.NewReader(v2["2.js"]), store.PutOptions{CreateOnly: true}); err != nil {
			t.Error(err)
		}
	}
	res := f.upload(t, "production", v2)
	// index.html and main.js are new; vendor.js is v1's, 2.js the other upload's.
	if res.NewFiles != 2 {
		t.Errorf("wrote %d file objects, want 2", res.NewFiles)
	}
	f.checkDownloads(t, 2)
}
