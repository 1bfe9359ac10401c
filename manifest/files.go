package manifest

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
)

// EncodingBrotli is the encoding of a file stored Brotli-compressed; the
// Capgo plugin decompresses a manifest entry whose file_name ends in ".br".
const EncodingBrotli = "br"

// MaxFileManifestSize is the largest file manifest a verifier reads.
const MaxFileManifestSize = 8 << 20

// FileManifest lists the files of a build, for devices that download only
// the files they lack. It is stored unsigned at [FileManifestKey]; the
// signed build reference names its sha256 and size.
type FileManifest struct {
	App   string      `json:"app"`
	Files []FileEntry `json:"files"` // sorted by name, names unique
}

// FileEntry is one file of a build.
type FileEntry struct {
	Name   string `json:"name"`   // path in the bundle, as in the zip
	SHA256 string `json:"sha256"` // lowercase hex SHA-256 of the file's content
	Size   int64  `json:"size"`   // bytes of the file's content
	// Encoding is "" when the object at [FileKey] holds the content as is,
	// or [EncodingBrotli] when it holds its Brotli form.
	Encoding string `json:"encoding,omitempty"`
}

// CheckFileManifest checks the bytes of a downloaded file manifest against
// the digest that a verified build reference names, and returns it.
func CheckFileManifest(ref BuildRef, app string, data []byte) (*FileManifest, error) {
	if ref.FilesSHA256 == "" {
		return nil, &Error{RuleFilesMismatch, fmt.Sprintf("build %s has no file manifest", ref.ID)}
	}
	sum := sha256.Sum256(data)
	if int64(len(data)) != ref.FilesSize || hex.EncodeToString(sum[:]) != ref.FilesSHA256 {
		return nil, &Error{RuleFilesMismatch, fmt.Sprintf("file manifest has %d bytes and sha256 %x, build %s says %d and %s", len(data), sum, ref.ID, ref.FilesSize, ref.FilesSHA256)}
	}
	var m FileManifest
	if err := decodeStrict(data, &m); err != nil {
		return nil, &Error{RuleMalformed, "file manifest: " + err.Error()}
	}
	if err := m.check(app); err != nil {
		return nil, &Error{RuleMalformed, "file manifest: " + err.Error()}
	}
	return &m, nil
}

func (m *FileManifest) check(app string) error {
	if m.App != app {
		return fmt.Errorf("for app %q, want %q", m.App, app)
	}
	for i, f := range m.Files {
		switch {
		case !validFileName(f.Name):
			return fmt.Errorf("file name %q is not a safe relative path", f.Name)
		case i > 0 && f.Name <= m.Files[i-1].Name:
			return fmt.Errorf("file %q is not after %q: names must be unique and sorted", f.Name, m.Files[i-1].Name)
		case !isDigest(f.SHA256):
			return fmt.Errorf("file %q: sha256 %q is not 64 lowercase hex digits", f.Name, f.SHA256)
		case f.Encoding != "" && f.Encoding != EncodingBrotli:
			return fmt.Errorf("file %q: unknown encoding %q", f.Name, f.Encoding)
		case strings.HasSuffix(f.Name, ".br") && f.Encoding != EncodingBrotli:
			return fmt.Errorf("file %q ends in .br: the Capgo plugin would decompress it, so it must be stored with encoding br", f.Name)
		}
	}
	return nil
}

// validFileName reports whether name is a file path the way bundles hold
// them: '/'-separated, no empty, "." or ".." element, no leading '/', and no
// ':', backslash, NUL or other control character.
func validFileName(name string) bool {
	if name == "" || strings.ContainsAny(name, ":\\") {
		return false
	}
	for _, r := range name {
		if r < 0x20 || r == 0x7f {
			return false
		}
	}
	for _, e := range strings.Split(name, "/") {
		if e == "" || e == "." || e == ".." {
			return false
		}
	}
	return true
}

// CapgoName is the file_name of an entry in a Capgo manifest: the name,
// with ".br" appended when the object is Brotli-compressed.
func (f FileEntry) CapgoName() string {
	if f.Encoding == EncodingBrotli {
		return f.Name + ".br"
	}
	return f.Name
}
