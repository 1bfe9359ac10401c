package manifest

import (
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"time"

	kgzip "github.com/klauspost/compress/gzip"
)

// gzipMagic starts every gzip stream (RFC 1952), and no file manifest:
// JSON text starts with '{' or whitespace.
var gzipMagic = []byte{0x1f, 0x8b}

// EncodeStoredFileManifest returns the form in which a file manifest's
// bytes are stored: their gzip form (one member, no optional header
// fields, modification time 0, OS 255), or the bytes themselves when that
// is not smaller. gzipped reports which.
func EncodeStoredFileManifest(data []byte) (stored []byte, gzipped bool) {
	var buf bytes.Buffer
	// Level 1 of this encoder gives within 1 % of the best size of JSON
	// holding hex digests, at an eighth of the time.
	zw, _ := kgzip.NewWriterLevel(&buf, kgzip.BestSpeed)
	zw.ModTime = time.Unix(0, 0) // written as 0; the zero time is not
	zw.Write(data)
	zw.Close()
	if buf.Len() >= len(data) {
		return data, false
	}
	return buf.Bytes(), true
}

// DecodeStoredFileManifest returns the bytes of a stored file manifest:
// stored itself, or, when it starts with the gzip magic bytes 1f 8b, the
// data of the one gzip member it must be, whose header flags (FLG) are 0.
// It decodes at most limit+1 bytes: flags set, a member that does not
// decode, bytes after it, or more than limit decoded bytes are a
// [RuleFilesMismatch].
func DecodeStoredFileManifest(stored []byte, limit int64) ([]byte, error) {
	if !bytes.HasPrefix(stored, gzipMagic) {
		return stored, nil
	}
	fail := func(detail string) error {
		return &Error{RuleFilesMismatch, "stored file manifest: " + detail}
	}
	// FLG 0: gzip readers differ on optional header fields and reserved
	// flags, and deploy writes none.
	if len(stored) < 10 || stored[3] != 0 {
		return nil, fail("its gzip header has flags set (a name, comment, extra field or header CRC); deploy writes none")
	}
	r := bytes.NewReader(stored)
	zr, err := gzip.NewReader(r)
	if err != nil {
		return nil, fail("not a gzip stream")
	}
	zr.Multistream(false)
	data, err := io.ReadAll(io.LimitReader(zr, limit+1))
	switch {
	case err != nil:
		return nil, fail("its gzip stream does not decode")
	case int64(len(data)) > limit:
		return nil, fail(fmt.Sprintf("decodes to more than %d bytes", limit))
	}
	// Read to the member's end, which checks its CRC-32 and length.
	if n, err := zr.Read(make([]byte, 1)); n > 0 || !errors.Is(err, io.EOF) {
		return nil, fail("its gzip stream does not decode")
	}
	if r.Len() > 0 {
		return nil, fail(fmt.Sprintf("%d bytes follow its gzip member", r.Len()))
	}
	return data, nil
}

// ReadFileManifest decodes a stored file manifest with
// [DecodeStoredFileManifest], up to the size the verified build reference
// names, checks it with [CheckFileManifest], and returns it with its bytes.
func ReadFileManifest(ref BuildRef, app string, stored []byte) (*FileManifest, []byte, error) {
	if ref.FilesSHA256 == "" {
		return nil, nil, &Error{RuleFilesMismatch, fmt.Sprintf("build %s has no file manifest", ref.ID)}
	}
	data, err := DecodeStoredFileManifest(stored, ref.FilesSize)
	if err != nil {
		return nil, nil, err
	}
	m, err := CheckFileManifest(ref, app, data)
	if err != nil {
		return nil, nil, err
	}
	return m, data, nil
}
