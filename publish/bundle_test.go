package publish_test

import (
	"archive/zip"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cartona/deploy/publish"
)

// writeTree creates files (name -> content) under a new temporary folder.
func writeTree(t testing.TB, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func zipDir(t *testing.T, dir string) *publish.Bundle {
	t.Helper()
	b, err := publish.Zip(dir, t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestZipIsDeterministicAndCapgoCompatible(t *testing.T) {
	big := strings.Repeat("console.log('chunk');\n", 300000) // > 4 MiB: the streamed path
	files := map[string]string{
		"index.html":          "<html><script src=main.js></script></html>",
		"main.js":             "CapacitorUpdater.notifyAppReady()",
		"café.js":             "// a name beyond ASCII",
		"assets/icon.svg":     "<svg/>",
		"assets/empty.txt":    "",
		"assets/img/logo.png": string(bytes.Repeat([]byte{0x89, 'P', 'N', 'G', 7}, 1000)),
		"vendor.js":           big,
		".DS_Store":           "junk",
		"__MACOSX/._x":        "junk",
	}
	dir := writeTree(t, files)
	a := zipDir(t, dir)
	// Same tree, written again later with other mtimes: same bytes.
	dir2 := writeTree(t, files)
	past := time.Date(2011, 2, 3, 4, 5, 6, 0, time.UTC)
	os.Chtimes(filepath.Join(dir2, "main.js"), past, past)
	os.Chmod(filepath.Join(dir2, "index.html"), 0o600)
	b := zipDir(t, dir2)
	if a.SHA256 != b.SHA256 || a.Size != b.Size {
		t.Fatalf("same tree gave different zips: %s/%d vs %s/%d", a.SHA256, a.Size, b.SHA256, b.Size)
	}
	data, err := os.ReadFile(a.Path)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	if hex.EncodeToString(sum[:]) != a.SHA256 || int64(len(data)) != a.Size {
		t.Fatal("Bundle.SHA256/Size do not describe the file")
	}
	if !a.NotifyAppReady || a.Files != 7 {
		t.Fatalf("NotifyAppReady = %v, Files = %d; want true, 7", a.NotifyAppReady, a.Files)
	}
	zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, f := range zr.File {
		names = append(names, f.Name)
		if !f.Modified.Equal(time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)) || f.CreatorVersion>>8 != 3 {
			t.Errorf("%s: modified %v, made by %d; want 2000-01-01 on Unix (3)", f.Name, f.Modified, f.CreatorVersion>>8)
		}
		if nonASCII := f.Name != strings.ToValidUTF8(f.Name, "") || strings.ContainsFunc(f.Name, func(r rune) bool { return r > 127 }); nonASCII != (f.Flags&0x800 != 0) {
			t.Errorf("%s: UTF-8 flag %v", f.Name, f.Flags&0x800 != 0)
		}
		if strings.HasSuffix(f.Name, "/") {
			if f.Flags&0x8 != 0 {
				t.Errorf("folder %s has the data-descriptor flag", f.Name)
			}
			continue
		}
		// Android's ZipInputStream rejects stored entries with a data descriptor.
		if f.Method != zip.Deflate {
			t.Errorf("%s: method %d, want Deflate", f.Name, f.Method)
		}
		if f.Mode().Perm() != 0o644 {
			t.Errorf("%s: mode %v, want 0644", f.Name, f.Mode())
		}
		rc, err := f.Open()
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			t.Fatalf("%s: %v", f.Name, err)
		}
		if string(got) != files[f.Name] {
			t.Errorf("%s: content differs after unzip", f.Name)
		}
	}
	want := "assets/ assets/empty.txt assets/icon.svg assets/img/ assets/img/logo.png café.js index.html main.js vendor.js"
	if strings.Join(names, " ") != want {
		t.Fatalf("entries = %v\nwant      %v", names, want)
	}
}

func TestZipWarnsWithoutNotifyAppReady(t *testing.T) {
	b := zipDir(t, writeTree(t, map[string]string{"index.html": "x", "main.js": "no call here"}))
	if b.NotifyAppReady {
		t.Fatal("NotifyAppReady = true for a build without the call")
	}
}

func TestZipRejectsBadBuilds(t *testing.T) {
	outside := writeTree(t, map[string]string{"secret.txt": "s"})
	cases := []struct {
		name  string
		setup func(t *testing.T) string
		want  string
	}{
		{"missing", func(t *testing.T) string { return filepath.Join(t.TempDir(), "nope") }, "does not exist"},
		{"empty", func(t *testing.T) string { return t.TempDir() }, "is empty"},
		{"file", func(t *testing.T) string {
			return filepath.Join(writeTree(t, map[string]string{"a": "b"}), "a")
		}, "is not a folder"},
		{"no index", func(t *testing.T) string {
			return writeTree(t, map[string]string{"sub/index.html": "x"})
		}, "no index.html at its root"},
		// index.html is checked before the walk, so a folder that is no web
		// build (dir=/tmp) fails on that, not on what the walk would meet.
		{"no index, a socket", func(t *testing.T) string {
			d := writeTree(t, map[string]string{"a.txt": "x"})
			l, err := net.Listen("unix", filepath.Join(d, "s"))
			if err != nil {
				t.Skip("no unix sockets:", err)
			}
			t.Cleanup(func() { l.Close() })
			return d
		}, "no index.html at its root"},
		{"no index, an unreadable folder", func(t *testing.T) string {
			d := writeTree(t, map[string]string{"locked/a.txt": "x"})
			if err := os.Chmod(filepath.Join(d, "locked"), 0); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { os.Chmod(filepath.Join(d, "locked"), 0o755) })
			return d
		}, "no index.html at its root"},
		{"no index, a bad name", func(t *testing.T) string {
			return writeTree(t, map[string]string{"a\nb.js": "x"})
		}, "no index.html at its root"},
		{"index.html is a folder", func(t *testing.T) string {
			return writeTree(t, map[string]string{"index.html/a": "x"})
		}, "no index.html at its root"},
		{"symlink out", func(t *testing.T) string {
			d := writeTree(t, map[string]string{"index.html": "x"})
			os.Symlink(filepath.Join(outside, "secret.txt"), filepath.Join(d, "leak.txt"))
			return d
		}, "outside the folder"},
		{"backslash", func(t *testing.T) string {
			return writeTree(t, map[string]string{"index.html": "x", `a\b.js`: "x"})
		}, "backslash"},
		{"newline", func(t *testing.T) string {
			return writeTree(t, map[string]string{"index.html": "x", "a\nb.js": "x"})
		}, `"a\nb.js" contains a newline`},
		{"control character", func(t *testing.T) string {
			return writeTree(t, map[string]string{"index.html": "x", "a\x1bb.js": "x"})
		}, `"a\x1bb.js" contains a newline or another control character`},
		{"case", func(t *testing.T) string {
			return writeTree(t, map[string]string{"index.html": "x", "Main.js": "x", "main.js": "y"})
		}, `"Main.js" and "main.js"`},
		{"folder case", func(t *testing.T) string {
			return writeTree(t, map[string]string{"index.html": "x", "img/a.png": "x", "IMG/b.png": "y"})
		}, `"IMG" and "img"`},
		{"4 GiB", func(t *testing.T) string { return sparse(t, 1<<32) }, "huge.bin is 4294967296 bytes; a file of 4294967295 bytes (2^32-1) or more needs zip64"},
		// Go's archive/zip writes zip64 from 2^32-1 bytes on (docs/format.md, "Bundles").
		{"2^32-1 bytes", func(t *testing.T) string { return sparse(t, 1<<32-1) }, "huge.bin is 4294967295 bytes"},
		{"kelvin sign", func(t *testing.T) string {
			return writeTree(t, map[string]string{"index.html": "x", "\u212Aa.js": "x", "ka.js": "y"})
		}, "differ only in case"},
		{"index.html in a folder only", func(t *testing.T) string {
			return writeTree(t, map[string]string{"INDEX.HTML": "x", "www/index.html": "x"})
		}, "no index.html at its root"},
		{"symlink to a folder", func(t *testing.T) string {
			d := writeTree(t, map[string]string{"index.html": "x", "sub/a.js": "x"})
			os.Symlink("sub", filepath.Join(d, "link"))
			return d
		}, "link is a symlink to a folder"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := publish.Zip(c.setup(t), t.TempDir(), nil)
			if !errors.Is(err, publish.ErrBadBuild) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v, want ErrBadBuild mentioning %q", err, c.want)
			}
		})
	}
}

// sparse returns a build folder with index.html and huge.bin, a sparse
// file of size bytes (no disk used).
func sparse(t *testing.T, size int64) string {
	d := writeTree(t, map[string]string{"index.html": "x"})
	f, err := os.Create(filepath.Join(d, "huge.bin"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
	return d
}

// Names that only Unicode normalization or full case folding would tell
// apart are not refused: the check is strings.ToLower, rune by rune.
func TestZipKeepsNamesThatDifferBeyondToLower(t *testing.T) {
	d := writeTree(t, map[string]string{"index.html": "x", "\u00e9.js": "1", "e\u0301.js": "2", "\u00df.js": "3", "SS.js": "4", "a\u0085b.js": "5"})
	if b := zipDir(t, d); b.Files != 6 {
		t.Fatalf("Files = %d, want 6", b.Files)
	}
}

func TestZipFollowsSymlinkInside(t *testing.T) {
	d := writeTree(t, map[string]string{"index.html": "x", "real.js": "y"})
	if err := os.Symlink("real.js", filepath.Join(d, "alias.js")); err != nil {
		t.Fatal(err)
	}
	b := zipDir(t, d)
	if b.Files != 3 {
		t.Fatalf("Files = %d, want 3", b.Files)
	}
}

func TestZipFollowsASymlinkedFolder(t *testing.T) {
	real := writeTree(t, map[string]string{"index.html": "x"})
	link := filepath.Join(t.TempDir(), "www")
	if err := os.Symlink(real, link); err != nil {
		t.Fatal(err)
	}
	if b := zipDir(t, link); b.Files != 1 {
		t.Fatalf("Files = %d through a symlinked folder, want 1", b.Files)
	}
}
