package manifest_test

import (
	"crypto/sha256"
	"encoding/hex"
	"io"
	"testing"

	"github.com/cartona/deploy/manifest"
)

// bomb gives 64 MiB of zeros and counts what was read: a decoder of a
// Brotli bomb, as far as VerifyFile can tell.
type bomb struct{ n int64 }

func (b *bomb) Read(p []byte) (int, error) {
	if b.n >= 64<<20 {
		return 0, io.EOF
	}
	p = p[:min(int64(len(p)), 64<<20-b.n)]
	clear(p)
	b.n += int64(len(p))
	return len(p), nil
}

// VerifyFile reads at most the entry's size plus one byte, however much
// the content (a decoded Brotli form) would give: more is files_mismatch.
func TestVerifyFileReadsAtMostSizePlusOne(t *testing.T) {
	content := make([]byte, 1000)
	sum := sha256.Sum256(content)
	f := manifest.FileEntry{Name: "a.js", SHA256: hex.EncodeToString(sum[:]), Size: int64(len(content)), Encoding: manifest.EncodingBrotli}
	r := &bomb{}
	err := manifest.VerifyFile(f, r)
	if manifest.RuleOf(err) != manifest.RuleFilesMismatch {
		t.Fatalf("err %v, want files_mismatch", err)
	}
	if r.n > f.Size+1 {
		t.Fatalf("read %d bytes, want at most %d", r.n, f.Size+1)
	}
}
