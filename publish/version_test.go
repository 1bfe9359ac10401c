package publish_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/cartona/deploy/manifest"
	"github.com/cartona/deploy/publish"
	"github.com/cartona/deploy/store"
)

// uploadVersion uploads the folder dir to production under version.
func (f *fixture) uploadVersion(dir, version string) (*publish.Result, error) {
	return f.publisher().Upload(context.Background(), publish.Request{App: "retailer", Dir: dir, Version: version})
}

// claim reads the version claim of version.
func (f *fixture) claim(t *testing.T, version string) publish.VersionClaim {
	t.Helper()
	var c publish.VersionClaim
	if err := json.Unmarshal(f.get(t, manifest.VersionKey("retailer", version)), &c); err != nil {
		t.Fatal(err)
	}
	return c
}

// Issue 8 item 8: a version stays taken for good. Once a prune removed its
// build record, the version's claim still refuses other content, and the
// same content again is fine.
func TestVersionStaysTakenAfterAPrune(t *testing.T) {
	eachStore(t, func(t *testing.T, newStore func(t *testing.T) store.Store) {
		f := newFixture(t, newStore(t))
		first, err := f.uploadVersion(writeTree(t, version(1)), "1.0.0")
		if err != nil {
			t.Fatal(err)
		}
		if c := f.claim(t, "1.0.0"); c.App != "retailer" || c.Version != "1.0.0" || c.SHA256 != first.SHA256 || c.Time.IsZero() {
			t.Fatalf("claim = %+v, want bundle %s", c, first.SHA256)
		}
		if _, err := f.store.Stat(context.Background(), manifest.VersionKey("retailer", "0.0.0-build.1")); !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("build 1 has version 1.0.0, yet 0.0.0-build.1 is claimed: %v", err)
		}
		for n := 2; n <= 3; n++ {
			f.upload(t, "production", version(n))
		}
		if c := f.claim(t, "0.0.0-build.3"); c.SHA256 == "" {
			t.Fatal("a default version is not claimed")
		}
		if res := f.prune(t, publish.PruneOptions{Keep: 1, Grace: -1}); !slices.Contains(res.Builds, 1) || len(res.Claimed) != 0 {
			t.Fatalf("prune removed builds %v, claimed %v; want build 1 gone, no claim missing", res.Builds, res.Claimed)
		}
		before := f.keys(t)
		_, err = f.uploadVersion(writeTree(t, version(4)), "1.0.0")
		var taken *publish.VersionTakenError
		if !errors.As(err, &taken) || taken.Build != 0 || taken.SHA256 != first.SHA256 || !strings.Contains(err.Error(), "version 1.0.0 of retailer was taken on ") {
			t.Fatalf("other content under a pruned build's version: err = %v", err)
		}
		if after := f.keys(t); strings.Join(after, " ") != strings.Join(before, " ") {
			t.Fatalf("the refused upload wrote: %v, was %v", after, before)
		}
		again, err := f.uploadVersion(writeTree(t, version(1)), "1.0.0")
		if err != nil || again.Version != "1.0.0" || again.SHA256 != first.SHA256 {
			t.Fatalf("the same content under its own version: %+v, %v", again, err)
		}
		f.verifyChannel(t, "retailer", "production")
	})
}

// A store from before claims: a prune writes the claim of each record it
// removes, so the version stays taken; a claim already there stays as is.
func TestPruneClaimsTheVersionsItRemoves(t *testing.T) {
	eachStore(t, func(t *testing.T, newStore func(t *testing.T) store.Store) {
		f := newFixture(t, newStore(t))
		ctx := context.Background()
		first, err := f.uploadVersion(writeTree(t, version(1)), "1.0.0")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.uploadVersion(writeTree(t, version(2)), "2.0.0"); err != nil {
			t.Fatal(err)
		}
		f.upload(t, "production", version(3))
		f.upload(t, "production", version(4)) // build 3 is the rollback target, kept
		// As an older deploy left it: no claims.
		infos, err := f.store.List(ctx, manifest.VersionsPrefix("retailer"))
		if err != nil || len(infos) != 4 {
			t.Fatalf("claims = %d, %v; want 4", len(infos), err)
		}
		for _, in := range infos {
			if err := f.store.Delete(ctx, in.Key); err != nil {
				t.Fatal(err)
			}
		}
		// A claim written by hand for 2.0.0 stays as it is.
		mine := []byte(`{"app":"retailer","version":"2.0.0","sha256":"` + strings.Repeat("0", 64) + `","time":"2026-01-01T00:00:00Z"}`)
		if _, err := f.store.Put(ctx, manifest.VersionKey("retailer", "2.0.0"), bytes.NewReader(mine), store.PutOptions{CreateOnly: true}); err != nil {
			t.Fatal(err)
		}
		dry := f.prune(t, publish.PruneOptions{Keep: 1, Grace: -1, DryRun: true})
		if len(dry.Claimed) != 0 {
			t.Fatalf("a dry run claimed %v", dry.Claimed)
		}
		if _, err := f.store.Stat(ctx, manifest.VersionKey("retailer", "1.0.0")); !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("a dry run wrote a claim: %v", err)
		}
		res := f.prune(t, publish.PruneOptions{Keep: 1, Grace: -1})
		if fmt.Sprint(res.Builds) != "[1 2]" || fmt.Sprint(res.Claimed) != "[1.0.0]" {
			t.Fatalf("prune removed %v and claimed %v; want [1 2] and [1.0.0]", res.Builds, res.Claimed)
		}
		if c := f.claim(t, "1.0.0"); c.SHA256 != first.SHA256 {
			t.Fatalf("claim of 1.0.0 = %+v, want bundle %s", c, first.SHA256)
		}
		if got := f.get(t, manifest.VersionKey("retailer", "2.0.0")); !bytes.Equal(got, mine) {
			t.Fatalf("the claim of 2.0.0 changed: %s", got)
		}
		var taken *publish.VersionTakenError
		if _, err := f.uploadVersion(writeTree(t, version(5)), "1.0.0"); !errors.As(err, &taken) {
			t.Fatalf("other content under 1.0.0 after the prune: err = %v", err)
		}
	})
}

// Uploads of one version with other contents at the same time: exactly
// one gets it, the others are refused, round after round.
func TestConcurrentUploadsOfOneVersion(t *testing.T) {
	eachStore(t, func(t *testing.T, newStore func(t *testing.T) store.Store) {
		f := newFixture(t, newStore(t))
		const rounds, uploads = 5, 4
		for r := range rounds {
			v := fmt.Sprintf("3.%d.0", r)
			var wg sync.WaitGroup
			errs := make([]error, uploads)
			shas := make([]string, uploads)
			dirs := make([]string, uploads)
			for i := range uploads {
				dirs[i] = writeTree(t, version(100*r+i))
			}
			for i := range uploads {
				wg.Add(1)
				go func() {
					defer wg.Done()
					res, err := f.uploadVersion(dirs[i], v)
					errs[i] = err
					if err == nil {
						shas[i] = res.SHA256
					}
				}()
			}
			wg.Wait()
			won := -1
			for i, err := range errs {
				var taken *publish.VersionTakenError
				switch {
				case err == nil && won >= 0:
					t.Fatalf("round %d: uploads %d and %d both published version %s", r, won, i, v)
				case err == nil:
					won = i
				case !errors.As(err, &taken):
					t.Fatalf("round %d: upload %d: %v, want a VersionTakenError", r, i, err)
				}
			}
			if won < 0 {
				t.Fatalf("round %d: no upload got version %s: %v", r, v, errs)
			}
			if c := f.claim(t, v); c.SHA256 != shas[won] {
				t.Fatalf("round %d: the claim names %s, the winner uploaded %s", r, c.SHA256, shas[won])
			}
			acl, _, err := publish.ReadACL(context.Background(), f.store, f.trust)
			if err != nil {
				t.Fatal(err)
			}
			builds, err := publish.ListBuilds(context.Background(), f.store, acl, "retailer", func(string, error) {})
			if err != nil {
				t.Fatal(err)
			}
			for _, b := range builds {
				if b.Version == v && b.SHA256 != shas[won] {
					t.Fatalf("round %d: build %d has version %s with the loser's content", r, b.Number, v)
				}
			}
		}
	})
}
