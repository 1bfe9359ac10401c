package publish

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/cartona/deploy/manifest"
	"github.com/cartona/deploy/store/file"
)

func newPointerPublisher(t *testing.T) *Publisher {
	t.Helper()
	dir := t.TempDir()
	root, err := manifest.GenerateKey(filepath.Join(dir, "root.key"))
	if err != nil {
		t.Fatal(err)
	}
	user, err := manifest.GenerateKey(filepath.Join(dir, "user.key"))
	if err != nil {
		t.Fatal(err)
	}
	s, err := file.Open(filepath.Join(dir, "store"))
	if err != nil {
		t.Fatal(err)
	}
	users := []manifest.User{{Name: "ahmed", Keys: []string{manifest.FormatPublicKey(manifest.Public(user))}, Grants: map[string]manifest.Grant{"shop": {CanUpload: true}}}}
	if _, err := InitACL(context.Background(), s, root, users); err != nil {
		t.Fatal(err)
	}
	return &Publisher{Store: s, Key: user, Trust: manifest.Trust{Roots: []ed25519.PublicKey{manifest.Public(root)}}}
}

// ref is a build reference of the layout, for build number n.
func ref(n int64) manifest.BuildRef {
	sha := strings.Repeat(fmt.Sprintf("%x", n%16), 64)
	return manifest.BuildRef{ID: manifest.BuildID("shop", n), Number: n, Version: fmt.Sprint(n), Bundle: manifest.BundleKey("shop", sha), SHA256: sha, Size: 1}
}

func TestUpdatePointerContract(t *testing.T) {
	p := newPointerPublisher(t)
	ctx := context.Background()
	var sawNil bool
	l, written, err := p.updatePointer(ctx, "shop", "beta", func(cur *manifest.Latest) (*manifest.Latest, error) {
		sawNil = cur == nil
		// App, Channel and Sequence are the loop's, whatever the edit says.
		return &manifest.Latest{App: "other", Channel: "x", Sequence: 99, Build: ref(1)}, nil
	})
	if err != nil || !written || !sawNil {
		t.Fatalf("first pointer: written %v, err %v, edit saw nil %v", written, err, sawNil)
	}
	if l.App != "shop" || l.Channel != "beta" || l.Sequence != 1 || !l.Expires.Equal(l.Issued.Add(DefaultExpiry)) {
		t.Fatalf("first pointer = %+v", l)
	}
	// An edit that returns nil writes nothing and returns the current pointer.
	l, written, err = p.updatePointer(ctx, "shop", "beta", func(cur *manifest.Latest) (*manifest.Latest, error) { return nil, nil })
	if err != nil || written || l == nil || l.Sequence != 1 {
		t.Fatalf("no-op edit: %+v, written %v, err %v", l, written, err)
	}
}

func TestUpdatePointerRerunsTheEditOnAFreshPointer(t *testing.T) {
	p := newPointerPublisher(t)
	ctx := context.Background()
	if _, _, err := p.updatePointer(ctx, "shop", "beta", func(*manifest.Latest) (*manifest.Latest, error) {
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
			_, _, errs[i] = p.updatePointer(ctx, "shop", "beta", func(cur *manifest.Latest) (*manifest.Latest, error) {
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
	acl, _, _ := ReadACL(ctx, p.Store, p.Trust)
	cur, err := p.readCurrent(ctx, acl, "shop", "beta")
	if err != nil || !cur.verified || cur.Build.Number != n+1 {
		t.Fatalf("after %d concurrent increments: build %d (verified %v, err %v), want %d", n, cur.Build.Number, cur.verified, err, n+1)
	}
	if cur.Sequence < n+1 {
		t.Fatalf("sequence %d after %d changes", cur.Sequence, n+1)
	}
}
