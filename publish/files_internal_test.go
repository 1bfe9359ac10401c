package publish

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/andybalholm/brotli"

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

// A small file is read once: its object holds the bytes the zip hashed,
// even if the file changes after the zip, and its Brotli form too.
func TestSmallFilesAreStoredAsZipped(t *testing.T) {
	dir := t.TempDir()
	small, medium := strings.Repeat("let a = 1;\n", 10), strings.Repeat("let b = 2;\n", 800)
	for name, text := range map[string]string{"index.html": "<!doctype html>", "a.js": small, "b.js": medium} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	b, err := Zip(dir, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Remove()
	for _, name := range []string{"a.js", "b.js"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte("changed after the zip"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	s, err := file.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	p := &Publisher{Store: s}
	for _, c := range b.Contents {
		o := &fileObject{Content: c, names: []string{c.Name}, rawSize: -1, brSize: -1}
		if err := p.putObject(context.Background(), s, "shop", o); err != nil {
			t.Fatalf("%s: %v", c.Name, err)
		}
		e := manifest.FileEntry{Name: c.Name, SHA256: c.SHA256, Size: c.Size, Encoding: o.encoding(c.Name)}
		rc, _, err := s.Get(context.Background(), manifest.FileKey("shop", c.SHA256, e.Encoding))
		if err != nil {
			t.Fatal(err)
		}
		var r io.Reader = rc
		if e.Encoding == manifest.EncodingBrotli {
			r = brotli.NewReader(rc)
		}
		err = manifest.VerifyFile(e, r)
		rc.Close()
		if err != nil {
			t.Fatalf("%s: %v", c.Name, err)
		}
		if c.Name == "b.js" && e.Encoding != manifest.EncodingBrotli {
			t.Errorf("b.js (%d bytes) stored as is, want its Brotli form", c.Size)
		}
	}
}
