package file_test

import (
	"context"
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
