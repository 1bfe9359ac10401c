package file_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cartona/deploy/store"
	"github.com/cartona/deploy/store/file"
	"github.com/cartona/deploy/store/storetest"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		s, err := file.Open(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}

// TestListSkipsForeignFiles: files the store could not have written, such
// as a Finder's .DS_Store in a folder served as the store, are not listed.
func TestListSkipsForeignFiles(t *testing.T) {
	root := t.TempDir()
	s, err := file.Open(root)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := s.Put(ctx, "apps/a/builds/1.json", strings.NewReader("x"), store.PutOptions{Size: 1}); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "apps", "a", "builds", ".DS_Store"), []byte("y"), 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := s.List(ctx, "apps/")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].Key != "apps/a/builds/1.json" {
		t.Fatalf("List = %+v, want only apps/a/builds/1.json", got)
	}
}

// A batch's objects are invisible until Commit, Close discards them and
// leaves no temporary file, and a key another writer creates between Put
// and Commit keeps that writer's bytes.
func TestBatchStagesUntilCommit(t *testing.T) {
	root := t.TempDir()
	s, err := file.Open(root)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	b := s.NewBatch()
	for _, key := range []string{"apps/a/files/1", "apps/a/files/2"} {
		if _, err := b.Put(ctx, key, strings.NewReader("batch "+key), store.PutOptions{CreateOnly: true}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.Stat(ctx, "apps/a/files/1"); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("a staged object is visible before Commit: %v", err)
	}
	if _, err := s.Put(ctx, "apps/a/files/2", strings.NewReader("other writer"), store.PutOptions{CreateOnly: true}); err != nil {
		t.Fatal(err)
	}
	if err := b.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	for key, want := range map[string]string{"apps/a/files/1": "batch apps/a/files/1", "apps/a/files/2": "other writer"} {
		rc, _, err := s.Get(ctx, key)
		if err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(rc)
		rc.Close()
		if string(got) != want {
			t.Fatalf("%s = %q, want %q", key, got, want)
		}
	}
	discarded := s.NewBatch()
	if _, err := discarded.Put(ctx, "apps/a/files/3", strings.NewReader("x"), store.PutOptions{CreateOnly: true}); err != nil {
		t.Fatal(err)
	}
	discarded.Close()
	if _, err := s.Stat(ctx, "apps/a/files/3"); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("a closed batch's object is visible: %v", err)
	}
	if left, _ := os.ReadDir(filepath.Join(root, ".tmp")); len(left) != 0 {
		t.Fatalf("temporary files left behind: %v", left)
	}
	if _, err := discarded.Put(ctx, "apps/a/files/4", strings.NewReader("x"), store.PutOptions{IfMatch: "abc"}); err == nil {
		t.Fatal("a batch accepted a compare-and-swap Put")
	}
}

// Temporary files a crashed writer left are removed when the store is next
// opened, once they are a day old; a running writer's are not.
func TestOpenSweepsStaleTemporaryFiles(t *testing.T) {
	root := t.TempDir()
	if _, err := file.Open(root); err != nil {
		t.Fatal(err)
	}
	stale, fresh := filepath.Join(root, ".tmp", "put-1"), filepath.Join(root, ".tmp", "put-2")
	for _, p := range []string{stale, fresh} {
		if err := os.WriteFile(p, []byte("partial"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	old := time.Now().Add(-25 * time.Hour)
	if err := os.Chtimes(stale, old, old); err != nil {
		t.Fatal(err)
	}
	if _, err := file.Open(root); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(stale); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("a day-old temporary file is still there: %v", err)
	}
	if _, err := os.Stat(fresh); err != nil {
		t.Fatalf("a running writer's temporary file was removed: %v", err)
	}
}

// TestLargeObjectETag: the ETag of an object over 1 MiB, which is not a
// hash of its bytes, changes when the file is rewritten in place with as
// many bytes and its modification time set back (touch -r), or replaced
// by another file of the same size and times; and it holds still while
// the file does, so compare-and-swap works on it.
func TestLargeObjectETag(t *testing.T) {
	root := t.TempDir()
	s, err := file.Open(root)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	const key = "apps/a/bundles/big.zip"
	path := filepath.Join(root, filepath.FromSlash(key))
	data := make([]byte, 2<<20)
	rand.Read(data)
	stat := func() store.Info {
		t.Helper()
		info, err := s.Stat(ctx, key)
		if err != nil {
			t.Fatal(err)
		}
		return info
	}

	first, err := s.Put(ctx, key, bytes.NewReader(data), store.PutOptions{CreateOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	if got := stat(); got.ETag != first.ETag || got.Size != int64(len(data)) {
		t.Fatalf("Stat after a create-only Put = %+v, want ETag %q", got, first.ETag)
	}
	data[0] ^= 0xff
	second, err := s.Put(ctx, key, bytes.NewReader(data), store.PutOptions{IfMatch: first.ETag})
	if err != nil {
		t.Fatalf("compare-and-swap with the current ETag: %v", err)
	}
	if second.ETag == first.ETag || stat().ETag != second.ETag {
		t.Fatalf("ETags: first %q, second %q, Stat %q", first.ETag, second.ETag, stat().ETag)
	}
	if _, err := s.Put(ctx, key, bytes.NewReader(data), store.PutOptions{IfMatch: first.ETag}); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("compare-and-swap with a stale ETag: %v, want a conflict", err)
	}

	// Rewritten later, as an attacker would, not in the clock tick of the
	// last write (see statETag).
	time.Sleep(20 * time.Millisecond)
	before := stat()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	fh, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fh.WriteAt([]byte{^data[len(data)/2]}, int64(len(data)/2)); err != nil {
		t.Fatal(err)
	}
	fh.Close()
	if err := os.Chtimes(path, fi.ModTime(), fi.ModTime()); err != nil {
		t.Fatal(err)
	}
	inPlace := stat()
	if inPlace.Size != before.Size || !inPlace.ModTime.Equal(before.ModTime) {
		t.Fatalf("the rewrite changed size or modification time: %+v, before %+v", inPlace, before)
	}
	if inPlace.ETag == before.ETag {
		t.Errorf("rewritten in place with its modification time set back: ETag %q unchanged", inPlace.ETag)
	}

	time.Sleep(20 * time.Millisecond)
	other := filepath.Join(root, "other")
	if err := os.WriteFile(other, data, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(other, fi.ModTime(), fi.ModTime()); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(other, path); err != nil {
		t.Fatal(err)
	}
	if replaced := stat(); replaced.ETag == inPlace.ETag || !replaced.ModTime.Equal(before.ModTime) {
		t.Errorf("replaced by a file of the same size and times: ETag %q, before %q", replaced.ETag, inPlace.ETag)
	}
}

// A store path through a file is named as such, not as a failed mkdir.
func TestOpenThroughAFile(t *testing.T) {
	f := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(f, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, dir := range []string{f, filepath.Join(f, "store")} {
		_, err := file.Open(dir)
		if !errors.Is(err, file.ErrNotFolder) || !strings.Contains(err.Error(), f+" is a file, not a folder; check store=") || strings.Contains(err.Error(), "mkdir") {
			t.Errorf("Open(%s) = %v", dir, err)
		}
	}
}
