package file_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

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
