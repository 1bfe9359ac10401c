// Package storetest is the conformance suite that every store.Store
// backend must pass. A backend's test calls [Run] with a function that opens
// a fresh, empty store.
package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/cartona/deploy/store"
)

// Run runs the conformance suite against stores made by open.
func Run(t *testing.T, open func(t *testing.T) store.Store) {
	t.Run("GetMissing", func(t *testing.T) {
		s := open(t)
		_, _, err := s.Get(context.Background(), "apps/x/missing.json")
		if !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("Get missing: err = %v, want fs.ErrNotExist", err)
		}
		_, err = s.Stat(context.Background(), "apps/x/missing.json")
		if !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("Stat missing: err = %v, want fs.ErrNotExist", err)
		}
	})

	t.Run("PutGetRoundTrip", func(t *testing.T) {
		s := open(t)
		ctx := context.Background()
		body := []byte(`{"hello":"world"}`)
		info, err := s.Put(ctx, "a/b/c.json", bytes.NewReader(body), store.PutOptions{Size: int64(len(body)), ContentType: "application/json", CacheControl: "max-age=60"})
		if err != nil {
			t.Fatal(err)
		}
		if info.ETag == "" {
			t.Fatal("Put returned an empty ETag")
		}
		rc, got, err := s.Get(ctx, "a/b/c.json")
		if err != nil {
			t.Fatal(err)
		}
		data, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(data, body) {
			t.Fatalf("Get = %q, want %q", data, body)
		}
		if got.Size != int64(len(body)) || got.ETag != info.ETag {
			t.Fatalf("Get info = %+v, want size %d etag %q", got, len(body), info.ETag)
		}
		st, err := s.Stat(ctx, "a/b/c.json")
		if err != nil || st.ETag != info.ETag || st.Size != int64(len(body)) {
			t.Fatalf("Stat = %+v, %v; want etag %q", st, err, info.ETag)
		}
	})

	t.Run("CreateOnly", func(t *testing.T) {
		s := open(t)
		ctx := context.Background()
		opt := store.PutOptions{CreateOnly: true}
		if _, err := s.Put(ctx, "k", bytes.NewReader([]byte("one")), opt); err != nil {
			t.Fatal(err)
		}
		_, err := s.Put(ctx, "k", bytes.NewReader([]byte("two")), opt)
		if !errors.Is(err, fs.ErrExist) {
			t.Fatalf("second create-only Put: err = %v, want fs.ErrExist", err)
		}
		if got := read(t, s, "k"); got != "one" {
			t.Fatalf("after refused create-only Put, content = %q, want %q", got, "one")
		}
	})

	t.Run("Transient", func(t *testing.T) {
		// A transient object reads back like any other, and its
		// compare-and-swap works the same.
		s := open(t)
		ctx := context.Background()
		info, err := s.Put(ctx, "leases/x.json", bytes.NewReader([]byte("one")), store.PutOptions{Transient: true})
		if err != nil {
			t.Fatal(err)
		}
		if got := read(t, s, "leases/x.json"); got != "one" {
			t.Fatalf("transient object = %q, want %q", got, "one")
		}
		if _, err := s.Put(ctx, "leases/x.json", bytes.NewReader([]byte("two")), store.PutOptions{Transient: true, IfMatch: "stale"}); !errors.Is(err, store.ErrConflict) {
			t.Fatalf("transient Put with a stale ETag: err = %v, want ErrConflict", err)
		}
		if _, err := s.Put(ctx, "leases/x.json", bytes.NewReader([]byte("two")), store.PutOptions{Transient: true, IfMatch: info.ETag}); err != nil {
			t.Fatal(err)
		}
		if got := read(t, s, "leases/x.json"); got != "two" {
			t.Fatalf("transient object = %q, want %q", got, "two")
		}
	})

	t.Run("CompareAndSwap", func(t *testing.T) {
		s := open(t)
		ctx := context.Background()
		first, err := s.Put(ctx, "p", bytes.NewReader([]byte("v1")), store.PutOptions{})
		if err != nil {
			t.Fatal(err)
		}
		second, err := s.Put(ctx, "p", bytes.NewReader([]byte("v2")), store.PutOptions{IfMatch: first.ETag})
		if err != nil {
			t.Fatalf("CAS with current ETag: %v", err)
		}
		if second.ETag == first.ETag {
			t.Fatal("ETag did not change after an overwrite")
		}
		_, err = s.Put(ctx, "p", bytes.NewReader([]byte("v3")), store.PutOptions{IfMatch: first.ETag})
		if !errors.Is(err, store.ErrConflict) {
			t.Fatalf("CAS with stale ETag: err = %v, want store.ErrConflict", err)
		}
		if got := read(t, s, "p"); got != "v2" {
			t.Fatalf("content = %q, want v2", got)
		}
	})

	t.Run("ConcurrentCAS", func(t *testing.T) {
		s := open(t)
		ctx := context.Background()
		if _, err := s.Put(ctx, "counter", bytes.NewReader([]byte("0")), store.PutOptions{CreateOnly: true}); err != nil {
			t.Fatal(err)
		}
		const n = 10
		var wg sync.WaitGroup
		errs := make(chan error, n)
		for range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					rc, info, err := s.Get(ctx, "counter")
					if err != nil {
						errs <- err
						return
					}
					b, _ := io.ReadAll(rc)
					rc.Close()
					v, _ := strconv.Atoi(string(b))
					_, err = s.Put(ctx, "counter", bytes.NewReader([]byte(strconv.Itoa(v+1))), store.PutOptions{IfMatch: info.ETag})
					if errors.Is(err, store.ErrConflict) {
						continue
					}
					if err != nil {
						errs <- err
					}
					return
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		if got := read(t, s, "counter"); got != strconv.Itoa(n) {
			t.Fatalf("counter = %s after %d concurrent increments, want %d", got, n, n)
		}
	})

	t.Run("ConcurrentCreateOnly", func(t *testing.T) {
		s := open(t)
		ctx := context.Background()
		const n = 8
		var wg sync.WaitGroup
		var mu sync.Mutex
		won := 0
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, err := s.Put(ctx, "once", bytes.NewReader([]byte(fmt.Sprint(i))), store.PutOptions{CreateOnly: true})
				switch {
				case err == nil:
					mu.Lock()
					won++
					mu.Unlock()
				case !errors.Is(err, fs.ErrExist):
					t.Error(err)
				}
			}()
		}
		wg.Wait()
		if won != 1 {
			t.Fatalf("%d create-only Puts succeeded, want exactly 1", won)
		}
	})

	t.Run("List", func(t *testing.T) {
		s := open(t)
		ctx := context.Background()
		keys := []string{"apps/a/builds/2.json", "apps/a/builds/10.json", "apps/a/builds/1.json", "apps/b/builds/1.json", "apps/a/latest.json"}
		for _, k := range keys {
			if _, err := s.Put(ctx, k, bytes.NewReader([]byte(k)), store.PutOptions{}); err != nil {
				t.Fatal(err)
			}
		}
		got, err := s.List(ctx, "apps/a/builds/")
		if err != nil {
			t.Fatal(err)
		}
		want := []string{"apps/a/builds/1.json", "apps/a/builds/10.json", "apps/a/builds/2.json"}
		if len(got) != len(want) {
			t.Fatalf("List = %v, want %v", got, want)
		}
		for i, info := range got {
			if info.Key != want[i] || info.Size != int64(len(want[i])) {
				t.Fatalf("List[%d] = %+v, want key %s size %d", i, info, want[i], len(want[i]))
			}
		}
		none, err := s.List(ctx, "apps/zzz/")
		if err != nil || len(none) != 0 {
			t.Fatalf("List of an empty prefix = %v, %v; want nothing, no error", none, err)
		}
	})

	t.Run("Delete", func(t *testing.T) {
		s := open(t)
		ctx := context.Background()
		if _, err := s.Put(ctx, "d", bytes.NewReader([]byte("x")), store.PutOptions{}); err != nil {
			t.Fatal(err)
		}
		if err := s.Delete(ctx, "d"); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Stat(ctx, "d"); !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("Stat after Delete: %v, want fs.ErrNotExist", err)
		}
		if err := s.Delete(ctx, "d"); err != nil {
			t.Fatalf("Delete of a missing key: %v, want nil", err)
		}
	})

	t.Run("InvalidKeys", func(t *testing.T) {
		s := open(t)
		ctx := context.Background()
		for _, key := range []string{"", "/etc/passwd", "../x", "a/../../x", "a/./b", "a\\b", ".tmp/x", "a/.hidden", "a//b", "a/", "a\x00b", "a\nb"} {
			if _, _, err := s.Get(ctx, key); err == nil || !strings.Contains(err.Error(), "invalid key") {
				t.Errorf("Get(%q) error = %v, want an invalid key error", key, err)
			}
			if _, err := s.Put(ctx, key, strings.NewReader("x"), store.PutOptions{}); err == nil || !strings.Contains(err.Error(), "invalid key") {
				t.Errorf("Put(%q) error = %v, want an invalid key error", key, err)
			}
			if err := s.Delete(ctx, key); err == nil {
				t.Errorf("Delete(%q) succeeded, want an invalid key error", key)
			}
		}
	})

	t.Run("Batch", func(t *testing.T) {
		s := open(t)
		ctx := context.Background()
		if _, err := s.Put(ctx, "files/old", strings.NewReader("old"), store.PutOptions{CreateOnly: true}); err != nil {
			t.Fatal(err)
		}
		b := store.NewBatch(s)
		defer b.Close()
		for i := range 20 {
			key := fmt.Sprintf("files/%02d", i)
			if _, err := b.Put(ctx, key, strings.NewReader(key), store.PutOptions{CreateOnly: true}); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := b.Put(ctx, "files/old", strings.NewReader("new"), store.PutOptions{CreateOnly: true}); !errors.Is(err, fs.ErrExist) {
			t.Fatalf("create-only batch Put of an existing key: err = %v, want fs.ErrExist", err)
		}
		if _, err := b.Put(ctx, "files/replaced", strings.NewReader("r"), store.PutOptions{}); err != nil {
			t.Fatal(err)
		}
		if err := b.Commit(ctx); err != nil {
			t.Fatal(err)
		}
		for i := range 20 {
			key := fmt.Sprintf("files/%02d", i)
			if got := read(t, s, key); got != key {
				t.Fatalf("%s = %q after Commit, want %q", key, got, key)
			}
		}
		if got := read(t, s, "files/old"); got != "old" {
			t.Fatalf("files/old = %q, want the first writer's %q", got, "old")
		}
		if got := read(t, s, "files/replaced"); got != "r" {
			t.Fatalf("files/replaced = %q, want r", got)
		}
		if err := b.Commit(ctx); err != nil {
			t.Fatalf("a second Commit with nothing staged: %v", err)
		}
	})

	t.Run("FailedReaderLeavesNothing", func(t *testing.T) {
		s := open(t)
		ctx := context.Background()
		r := io.MultiReader(bytes.NewReader(make([]byte, 1<<16)), errReader{})
		if _, err := s.Put(ctx, "half", r, store.PutOptions{CreateOnly: true}); err == nil {
			t.Fatal("Put from a failing reader succeeded")
		}
		if _, err := s.Stat(ctx, "half"); !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("after a failed Put, Stat = %v; want fs.ErrNotExist (no partial object)", err)
		}
	})
}

type errReader struct{}

func (errReader) Read([]byte) (int, error) { return 0, errors.New("reader broke") }

func read(t *testing.T, s store.Store, key string) string {
	t.Helper()
	rc, _, err := s.Get(context.Background(), key)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
