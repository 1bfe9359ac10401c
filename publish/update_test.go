package publish_test

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/cartona/deploy/manifest"
	"github.com/cartona/deploy/publish"
	"github.com/cartona/deploy/store"
)

// ref is a build reference of the layout for build number n of retailer;
// its bundle need not exist.
func ref(n int64) manifest.BuildRef {
	sha := strings.Repeat(fmt.Sprintf("%x", n%16), 64)
	return manifest.BuildRef{ID: manifest.BuildID("retailer", n), Number: n, Version: fmt.Sprint(n), Bundle: manifest.BundleKey("retailer", sha), SHA256: sha, Size: 1}
}

// stored is ref(n) with placeholders at its build record's and bundle's
// keys, which a release command checks before it names a build.
func (f *fixture) stored(t *testing.T, n int64) manifest.BuildRef {
	t.Helper()
	r := ref(n)
	for _, key := range []string{manifest.BuildKey("retailer", n), r.Bundle} {
		if _, err := f.store.Put(context.Background(), key, strings.NewReader("{}"), store.PutOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	return r
}

// pointer verifies the channel's latest.json, expiry aside.
func (f *fixture) pointer(t *testing.T, channel string) *manifest.Latest {
	t.Helper()
	l, _, err := f.trust.VerifyLatest(f.get(t, manifest.ACLKey), f.get(t, manifest.LatestKey("retailer", channel)), manifest.Expect{App: "retailer", Channel: channel})
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func TestUpdatePointerContract(t *testing.T) {
	f := newFixture(t, fileStore(t))
	ctx := context.Background()
	var sawNil bool
	l, written, err := f.publisher().UpdatePointer(ctx, "retailer", "beta", func(cur *manifest.Latest) (*manifest.Latest, error) {
		sawNil = cur == nil
		// App, Channel and Sequence are the loop's, whatever the edit says.
		return &manifest.Latest{App: "other", Channel: "x", Sequence: 99, Build: ref(1)}, nil
	})
	if err != nil || !written || !sawNil {
		t.Fatalf("first pointer: written %v, err %v, edit saw nil %v", written, err, sawNil)
	}
	if l.App != "retailer" || l.Channel != "beta" || l.Sequence != 1 || !l.Expires.Equal(l.Issued.Add(publish.DefaultExpiry)) {
		t.Fatalf("first pointer = %+v", l)
	}
	if got := f.pointer(t, "beta"); got.Sequence != 1 || got.Build != ref(1) {
		t.Fatalf("stored pointer = %+v", got)
	}
	// An edit that returns nil writes nothing and returns the current pointer.
	l, written, err = f.publisher().UpdatePointer(ctx, "retailer", "beta", func(cur *manifest.Latest) (*manifest.Latest, error) { return nil, nil })
	if err != nil || written || l == nil || l.Sequence != 1 {
		t.Fatalf("no-op edit: %+v, written %v, err %v", l, written, err)
	}
	// A pointer that no verifier would accept is never written.
	_, _, err = f.publisher().UpdatePointer(ctx, "retailer", "beta", func(cur *manifest.Latest) (*manifest.Latest, error) {
		cur.Build.Bundle = "apps/retailer/bundles/elsewhere.zip"
		return cur, nil
	})
	if err == nil || !strings.Contains(err.Error(), "would not verify") || f.pointer(t, "beta").Sequence != 1 {
		t.Fatalf("an edit that breaks the layout: err = %v", err)
	}
}

func TestUpdatePointerRerunsTheEditOnAFreshPointer(t *testing.T) {
	f := newFixture(t, fileStore(t))
	ctx := context.Background()
	if _, _, err := f.publisher().UpdatePointer(ctx, "retailer", "beta", func(*manifest.Latest) (*manifest.Latest, error) {
		return &manifest.Latest{Build: ref(1)}, nil
	}); err != nil {
		t.Fatal(err)
	}
	const n = 8
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, _, errs[i] = f.publisher().UpdatePointer(ctx, "retailer", "beta", func(cur *manifest.Latest) (*manifest.Latest, error) {
				cur.Build = ref(cur.Build.Number + 1) // lost if cur were stale
				return cur, nil
			})
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if l := f.pointer(t, "beta"); l.Build.Number != n+1 || l.Sequence != n+1 {
		t.Fatalf("after %d concurrent increments: build %d at sequence %d, want build and sequence %d", n, l.Build.Number, l.Sequence, n+1)
	}
	f.verifyHistory(t, "beta", n+1)
}

// verifyHistory checks that the channel's history is one chain of want
// entries, the last of them latest.json.
func (f *fixture) verifyHistory(t *testing.T, channel string, want int) {
	t.Helper()
	ctx := context.Background()
	infos, err := f.store.List(ctx, manifest.HistoryPrefix("retailer", channel))
	if err != nil {
		t.Fatal(err)
	}
	bySeq := map[int64][]byte{}
	var seqs []int64
	for _, in := range infos {
		if seq, ok := manifest.ParseHistoryKey("retailer", channel, in.Key); ok {
			bySeq[seq] = f.get(t, in.Key)
			seqs = append(seqs, seq)
		}
	}
	slices.Sort(seqs)
	var entries [][]byte
	for _, s := range seqs {
		entries = append(entries, bySeq[s])
	}
	acl, _, err := publish.ReadACL(ctx, f.store, f.trust)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := acl.VerifyHistory("retailer", channel, entries); err != nil || len(entries) != want {
		t.Fatalf("history of %d entries (want %d): %v", len(entries), want, err)
	}
	if !bytes.Equal(entries[len(entries)-1], f.get(t, manifest.LatestKey("retailer", channel))) {
		t.Fatal("the last history entry is not latest.json")
	}
}

func TestUpdatePointerFinishesAPendingPointer(t *testing.T) {
	f := newFixture(t, fileStore(t))
	ctx := context.Background()
	first, _, err := f.publisher().UpdatePointer(ctx, "retailer", "beta", func(*manifest.Latest) (*manifest.Latest, error) {
		return &manifest.Latest{Build: ref(1)}, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// A writer claimed sequence 2 in the history and died before its swap.
	pending := *first
	pending.Sequence, pending.Build = 2, ref(2)
	link := manifest.LinkTo(1, f.get(t, manifest.LatestKey("retailer", "beta")))
	pending.Previous = &link
	env, err := manifest.Sign(manifest.TypeLatest, pending, f.user)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.store.Put(ctx, manifest.HistoryKey("retailer", "beta", 2), bytes.NewReader(env.Marshal()), store.PutOptions{CreateOnly: true}); err != nil {
		t.Fatal(err)
	}
	var saw []int64
	l, _, err := f.publisher().UpdatePointer(ctx, "retailer", "beta", func(cur *manifest.Latest) (*manifest.Latest, error) {
		saw = append(saw, cur.Build.Number)
		cur.Build = ref(3)
		return cur, nil
	})
	if err != nil || l.Sequence != 3 || l.Build.Number != 3 {
		t.Fatalf("after a pending pointer at 2: %+v, %v; want build 3 at sequence 3", l, err)
	}
	if len(saw) != 2 || saw[0] != 1 || saw[1] != 2 {
		t.Fatalf("the edit saw builds %v, want 1, then 2 once the pending pointer was in", saw)
	}
	f.verifyHistory(t, "beta", 3)
}
