package publish_test

import (
	"context"
	"strings"
	"testing"

	"github.com/cartona/deploy/manifest"
	"github.com/cartona/deploy/publish"
	"github.com/cartona/deploy/store"
)

func TestListBuildsSkipsBadRecords(t *testing.T) {
	eachStore(t, func(t *testing.T, newStore func(t *testing.T) store.Store) {
		f := newFixture(t, newStore(t))
		ctx := context.Background()
		for _, page := range []string{"a", "b"} {
			if _, err := f.publisher().Upload(ctx, publish.Request{App: "retailer", Dir: writeTree(t, map[string]string{"index.html": page})}); err != nil {
				t.Fatal(err)
			}
		}
		for key, junk := range map[string]string{
			manifest.BuildKey("retailer", 3): strings.Repeat("x", manifest.MaxBuildSize+1),
			manifest.BuildKey("retailer", 4): "{}",
		} {
			if _, err := f.store.Put(ctx, key, strings.NewReader(junk), store.PutOptions{}); err != nil {
				t.Fatal(err)
			}
		}
		acl, _, err := publish.ReadACL(ctx, f.store, f.trust)
		if err != nil {
			t.Fatal(err)
		}
		var warned []string
		builds, err := publish.ListBuilds(ctx, f.store, acl, "retailer", func(key string, err error) { warned = append(warned, key) })
		if err != nil {
			t.Fatal(err)
		}
		if len(builds) != 2 || builds[0].Number != 2 || builds[1].Number != 1 {
			t.Fatalf("ListBuilds = %+v, want builds 2 and 1", builds)
		}
		if strings.Join(warned, " ") != manifest.BuildKey("retailer", 3)+" "+manifest.BuildKey("retailer", 4) {
			t.Fatalf("warned about %v, want builds 3 and 4", warned)
		}
	})
}
