package publish

import (
	"context"
	"errors"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cartona/deploy/internal/s3test"
	"github.com/cartona/deploy/manifest"
	"github.com/cartona/deploy/store"
	"github.com/cartona/deploy/store/file"
	"github.com/cartona/deploy/store/s3"
)

// A file that changes between the zip and its upload is never stored
// under the hash the zip took, and the upload says why, on both stores.
func TestFileChangedSinceTheZipIsRefused(t *testing.T) {
	t.Run("file", func(t *testing.T) {
		s, err := file.Open(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		testFileChanged(t, s)
	})
	t.Run("s3", func(t *testing.T) {
		srv := s3test.Start(t)
		srv.Setenv(t)
		u, err := url.Parse(srv.URL("changed"))
		if err != nil {
			t.Fatal(err)
		}
		s, err := s3.Open(context.Background(), u)
		if err != nil {
			t.Fatal(err)
		}
		testFileChanged(t, s)
	})
}

func testFileChanged(t *testing.T, s store.Store) {
	p := &Publisher{Store: s}
	path := filepath.Join(t.TempDir(), "main.js")
	if err := os.WriteFile(path, []byte(strings.Repeat("changed since; ", 100)), 0o644); err != nil {
		t.Fatal(err)
	}
	sha := strings.Repeat("ab", 32) // the hash the zip took, of other bytes
	o := &fileObject{Content: Content{Name: "main.js", Path: path, Size: 1500, SHA256: sha}, names: []string{"main.js"}, rawSize: -1, brSize: -1}
	if _, err := p.compressFile(o.Content); !errors.Is(err, ErrBadBuild) || !strings.Contains(err.Error(), "changed while it was uploaded") {
		t.Fatalf("compress: %v", err)
	}
	for name, w := range map[string]putter{"store": s, "batch": store.NewBatch(s)} {
		err := p.putRaw(context.Background(), w, "shop", o)
		if !errors.Is(err, ErrBadBuild) || !strings.Contains(err.Error(), "changed while it was uploaded") {
			t.Fatalf("put as is, through the %s: %v", name, err)
		}
		if b, ok := w.(store.Batch); ok {
			if err := b.Commit(context.Background()); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := s.Stat(context.Background(), manifest.FileKey("shop", sha, "")); !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("through the %s, an object with other bytes was left under the hash: %v", name, err)
		}
	}
}
