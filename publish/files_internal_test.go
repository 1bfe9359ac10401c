package publish

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cartona/deploy/manifest"
	"github.com/cartona/deploy/store/file"
)

// A file that changes between the zip and its upload is never stored
// under the hash the zip took.
func TestFileChangedSinceTheZipIsRefused(t *testing.T) {
	s, err := file.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
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
	if err := p.putRaw(context.Background(), s, "shop", o); !errors.Is(err, ErrBadBuild) {
		t.Fatalf("put as is: %v", err)
	}
	if _, err := p.Store.Stat(context.Background(), manifest.FileKey("shop", sha, "")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("an object with other bytes was left under the hash: %v", err)
	}
}
