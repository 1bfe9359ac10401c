package manifest_test

import (
	"bytes"
	"compress/gzip"
	"errors"
	"runtime"
	"strings"
	"testing"

	"github.com/cartona/deploy/manifest"
)

// The stored form is the gzip form the format names, the same for the same
// bytes, and the bytes themselves when gzip is not smaller.
func TestEncodeStoredFileManifest(t *testing.T) {
	data := []byte(`{"app":"retailer","files":[` + strings.Repeat(`{"name":"a","sha256":"`+strings.Repeat("ab", 32)+`","size":1},`, 20) + `]}`)
	stored, gzipped := manifest.EncodeStoredFileManifest(data)
	again, _ := manifest.EncodeStoredFileManifest(data)
	if !gzipped || len(stored) >= len(data) || !bytes.Equal(stored, again) {
		t.Fatalf("stored %d bytes (gzip %v) of %d, same twice: %v", len(stored), gzipped, len(data), bytes.Equal(stored, again))
	}
	// ID1 ID2 CM FLG MTIME(4) XFL OS: Deflate, no optional fields, time 0,
	// OS 255.
	if h := stored[:10]; h[0] != 0x1f || h[1] != 0x8b || h[2] != 8 || h[3] != 0 || !bytes.Equal(h[4:8], []byte{0, 0, 0, 0}) || h[9] != 255 {
		t.Fatalf("gzip header % x", h)
	}
	if got, err := manifest.DecodeStoredFileManifest(stored, int64(len(data))); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("decode: %v", err)
	}
	tiny := []byte(`{"app":"a","files":[]}`)
	if stored, gzipped := manifest.EncodeStoredFileManifest(tiny); gzipped || !bytes.Equal(stored, tiny) {
		t.Fatalf("a manifest gzip does not shrink stored as %q (gzip %v)", stored, gzipped)
	}
}

// Go reads exactly one gzip member and nothing after it (the vectors hold
// what every reader refuses; these are Go's own, which format.md states).
func TestDecodeStoredFileManifestReadsOneMember(t *testing.T) {
	member := func(s string) []byte {
		var b bytes.Buffer
		zw := gzip.NewWriter(&b)
		zw.Write([]byte(s))
		zw.Close()
		return b.Bytes()
	}
	whole := `{"app":"a","files":[]}`
	for name, stored := range map[string][]byte{
		"two members":       append(member(whole[:5]), member(whole[5:])...),
		"a zero byte after": append(member(whole), 0),
	} {
		_, err := manifest.DecodeStoredFileManifest(stored, int64(len(whole)))
		var merr *manifest.Error
		if !errors.As(err, &merr) || merr.Rule != manifest.RuleFilesMismatch {
			t.Errorf("%s: %v, want files_mismatch", name, err)
		}
	}
	// The limit is the most bytes a member may hold.
	if _, err := manifest.DecodeStoredFileManifest(member(whole), int64(len(whole))); err != nil {
		t.Errorf("at the limit: %v", err)
	}
	if _, err := manifest.DecodeStoredFileManifest(member(whole), int64(len(whole)-1)); err == nil {
		t.Error("one byte over the limit decoded")
	}
	// A bomb is read no further than the limit.
	bomb := member(string(make([]byte, 64<<20)))
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	if _, err := manifest.DecodeStoredFileManifest(bomb, 1<<20); err == nil {
		t.Error("64 MiB of zeros decoded under a 1 MiB limit")
	}
	runtime.ReadMemStats(&after)
	if grew := after.TotalAlloc - before.TotalAlloc; grew > 8<<20 {
		t.Errorf("decoding a gzip bomb allocated %d MiB, want it stopped at the 1 MiB limit", grew>>20)
	}
}
