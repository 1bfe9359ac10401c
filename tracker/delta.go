package tracker

import (
	"bytes"
	"compress/flate"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"io/fs"
	"math"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/andybalholm/brotli"

	"github.com/cartona/deploy/manifest"
)

// deltaRecheck is how long a build whose file manifest or file objects
// could not be verified is answered with its zip before they are read
// again. A verified file set is kept: its objects are content-addressed.
const deltaRecheck = time.Minute

// fileChecks is how many file objects are read at once to verify a set.
const fileChecks = 8

// maxFileSets bounds the verified file sets kept in memory: each holds its
// manifest three times (as stored, as answered, compressed).
const maxFileSets = 64

// fileSet is a build's verified file manifest as the Capgo plugin takes it,
// ready to answer with: the start of an update answer, `{"manifest":` and
// the JSON array of {file_name, file_hash, download_url}, as is and as
// raw Deflate blocks ending in a sync flush, with its CRC-32. Each answer
// appends its own fields (version, url, checksum) after it.
type fileSet struct {
	raw      []byte // the file manifest as stored
	prefix   []byte
	deflated []byte
	crc      uint32
}

// capgoEntry is one entry of a Capgo manifest.
type capgoEntry struct {
	FileName    string `json:"file_name"`
	FileHash    string `json:"file_hash"`
	DownloadURL string `json:"download_url"`
}

// fileSets verifies and remembers the file sets of builds.
type fileSets struct {
	recent  *ttlCache[*fileSet] // nil value: answer with the zip
	mu      sync.Mutex
	ok      map[string]*fileSet // verified, by fileSetKey
	patches *ttlCache[[]byte]   // file manifest patches, by base and target; nil: none
}

func newFileSets(now func() time.Time) *fileSets {
	return &fileSets{recent: newTTLCache[*fileSet](deltaRecheck, maxFileSets, now, nil), ok: map[string]*fileSet{},
		patches: newTTLCache[[]byte](deltaRecheck, maxFileSets, now, nil)}
}

func fileSetKey(app string, ref manifest.BuildRef) string {
	return app + "/" + ref.FilesSHA256 + "/" + strconv.FormatInt(ref.FilesSize, 10)
}

// fileSet returns the verified file set of app's build ref, or nil when the
// build has none, the tracker has no CDN to point the files at, or its
// manifest or a file object fails verification (logged): the device then
// gets the zip.
func (s *Server) fileSet(ctx context.Context, app string, ref manifest.BuildRef) *fileSet {
	if s.cdn == "" || ref.FilesSHA256 == "" {
		return nil
	}
	key := fileSetKey(app, ref)
	set, err := s.files.recent.get(ctx, key, func() (*fileSet, error) {
		s.files.mu.Lock()
		set := s.files.ok[key]
		s.files.mu.Unlock()
		if set != nil {
			return set, nil
		}
		set, err := s.verifyFileSet(app, ref)
		if err != nil {
			s.log.Error().Err(err).Str("build", ref.ID).Msg("the build's file manifest is not served; devices get its zip")
			return nil, nil
		}
		s.files.mu.Lock()
		if len(s.files.ok) >= maxFileSets {
			clear(s.files.ok)
		}
		s.files.ok[key] = set
		s.files.mu.Unlock()
		return set, nil
	})
	if err != nil {
		return nil
	}
	return set
}

// verifyFileSet reads the file manifest that ref names, checks it against
// ref's digest with manifest.CheckFileManifest, checks every file object
// with manifest.VerifyFile, and builds the Capgo entries.
func (s *Server) verifyFileSet(app string, ref manifest.BuildRef) (*fileSet, error) {
	key := manifest.FileManifestKey(app, ref.FilesSHA256)
	data, err := s.man.read(key, manifest.MaxFileManifestSize)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", key, err)
	}
	m, data, err := manifest.ReadFileManifest(ref, app, data)
	if err != nil {
		return nil, err
	}
	if err := s.verifyFiles(app, m.Files); err != nil {
		return nil, err
	}
	entries := make([]capgoEntry, len(m.Files))
	for i, f := range m.Files {
		entries[i] = capgoEntry{FileName: f.CapgoName(), FileHash: f.SHA256, DownloadURL: s.cdn + "/" + manifest.FileKey(app, f.SHA256, f.Encoding)}
	}
	b, err := json.Marshal(entries)
	if err != nil {
		return nil, err
	}
	prefix := append([]byte(`{"manifest":`), b...)
	var z bytes.Buffer
	fw, _ := flate.NewWriter(&z, flate.BestCompression)
	fw.Write(prefix)
	if err := fw.Flush(); err != nil {
		return nil, err
	}
	return &fileSet{raw: data, prefix: prefix, deflated: z.Bytes(), crc: crc32.ChecksumIEEE(prefix)}, nil
}

// verifyFiles checks the stored object of every entry, fileChecks at a
// time, and returns the first failure.
func (s *Server) verifyFiles(app string, files []manifest.FileEntry) error {
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		first error
	)
	next := make(chan manifest.FileEntry)
	for range min(fileChecks, len(files)) {
		wg.Go(func() {
			for f := range next {
				if err := s.verifyFile(app, f); err != nil {
					mu.Lock()
					first = cmpOr(first, err)
					mu.Unlock()
				}
			}
		})
	}
	for _, f := range files {
		next <- f
	}
	close(next)
	wg.Wait()
	return first
}

func cmpOr(a, b error) error {
	if a != nil {
		return a
	}
	return b
}

// verifyFile reads one file object, undoes its encoding and checks it
// against its entry.
func (s *Server) verifyFile(app string, f manifest.FileEntry) error {
	key := manifest.FileKey(app, f.SHA256, f.Encoding)
	ctx, cancel := context.WithTimeout(context.Background(), s.man.timeout)
	defer cancel()
	rc, _, err := s.cfg.Store.Get(ctx, key)
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("file object %s of %s is missing", key, f.Name)
	}
	if err != nil {
		return fmt.Errorf("read %s: %w", key, err)
	}
	defer rc.Close()
	var r io.Reader = rc
	if f.Encoding == manifest.EncodingBrotli {
		r = brotli.NewReader(rc)
	}
	if err := manifest.VerifyFile(f, r); err != nil {
		return fmt.Errorf("file object %s: %w", key, err)
	}
	return nil
}

// writeCapgoUpdate answers an update check that offers build b: the zip's
// URL with the checksum the device's plugin version compares, and the
// file manifest too when that plugin version reads it and the build's
// files verify.
func (s *Server) writeCapgoUpdate(w http.ResponseWriter, r *http.Request, req *capgoRequest, app string, b manifest.BuildRef, device string) {
	v := parsePluginVersion(string(req.PluginVersion))
	ans := capgoUpdate{Version: b.Version, URL: s.downloadURL(r, b.ID, device), Checksum: zipChecksum(b, v, string(req.Platform))}
	var set *fileSet
	if v.takesManifest() {
		set = s.fileSet(r.Context(), app, b)
	}
	if set == nil {
		writeJSON(w, http.StatusOK, ans)
		return
	}
	tail, err := json.Marshal(ans)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	tail[0] = ',' // {"version":...} continues the prefix's object
	tail = append(tail, '\n')
	w.Header().Add("Vary", "Accept-Encoding")
	if !acceptsGzip(r) || len(tail) > math.MaxUint16 {
		writeRaw(w, http.StatusOK, set.prefix, tail)
		return
	}
	w.Header().Set("Content-Encoding", "gzip")
	// One buffer, so the answer leaves in one write rather than three.
	bp := answerBufs.Get().(*[]byte)
	buf := append(append((*bp)[:0], gzipHeader...), set.deflated...)
	buf = gzipEnd(buf, set, tail)
	writeRaw(w, http.StatusOK, buf)
	*bp = buf
	answerBufs.Put(bp)
}

// answerBufs are the buffers of gzip answers.
var answerBufs = sync.Pool{New: func() any { return new([]byte) }}

// gzipHeader starts a gzip member (RFC 1952) of Deflate data, with no
// name, time or flags.
var gzipHeader = []byte{0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff}

// gzipEnd completes out, which holds gzipHeader and set.deflated, into a
// gzip answer without compressing anything per request: tail goes in a final stored Deflate
// block after the set's blocks (RFC 1951 3.2.4; the sync flush left them
// byte-aligned), and the trailer takes the CRC-32 and length of
// set.prefix + tail.
func gzipEnd(out []byte, set *fileSet, tail []byte) []byte {
	out = storedBlock(out, tail, true)
	out = binary.LittleEndian.AppendUint32(out, crc32.Update(set.crc, crc32.IEEETable, tail))
	return binary.LittleEndian.AppendUint32(out, uint32(len(set.prefix)+len(tail)))
}

// storedBlock appends data (at most 65535 bytes) as a stored Deflate block
// that starts on a byte boundary.
func storedBlock(out, data []byte, final bool) []byte {
	var bfinal byte
	if final {
		bfinal = 1
	}
	n := uint16(len(data))
	out = append(out, bfinal)
	out = binary.LittleEndian.AppendUint16(out, n)
	out = binary.LittleEndian.AppendUint16(out, ^n)
	return append(out, data...)
}

// acceptsGzip reports whether the request's Accept-Encoding allows gzip,
// as the plugin's HTTP clients (OkHttp, URLSession) send it.
func acceptsGzip(r *http.Request) bool {
	for _, v := range r.Header.Values("Accept-Encoding") {
		for part := range strings.SplitSeq(v, ",") {
			name, q, _ := strings.Cut(strings.TrimSpace(part), ";")
			if strings.EqualFold(strings.TrimSpace(name), "gzip") && strings.ReplaceAll(q, " ", "") != "q=0" {
				return true
			}
		}
	}
	return false
}

// handleFiles answers GET /build/files?id=[&from=]: the file manifest of a
// build, for the device client's delta download, as {"manifest": <its
// bytes as a string>, "files_url": <the CDN URL its file objects are
// under>}; or, when from is the SHA-256 of a file manifest in the store,
// {"patch": <the patch from it, as a string>, "files_url"}. The device
// checks what it makes against the signed build reference itself. A build
// without a file manifest that verifies, or a tracker without a CDN, is a
// 404: the device downloads the zip.
func (s *Server) handleFiles(w http.ResponseWriter, r *http.Request) {
	id := r.URL.Query().Get("id")
	if _, _, err := parseBuildID(id); err != nil {
		s.writeError(w, r, err)
		return
	}
	b, err := s.man.build(r.Context(), id)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	set := s.fileSet(r.Context(), b.app, b.ref)
	if set == nil {
		s.writeError(w, r, errorf(codeNotFound, "build %s has no file manifest this tracker serves; download its zip", id))
		return
	}
	filesURL := s.cdn + "/" + manifest.AppPrefix(b.app) + "files/"
	if patch := s.filesPatch(r.Context(), b.app, r.URL.Query().Get("from"), b.ref, set); patch != nil {
		writeJSON(w, http.StatusOK, struct {
			Patch    string `json:"patch"`
			FilesURL string `json:"files_url"`
		}{string(patch), filesURL})
		return
	}
	writeJSON(w, http.StatusOK, struct {
		Manifest string `json:"manifest"`
		FilesURL string `json:"files_url"`
	}{string(set.raw), filesURL})
}

// filesPatch returns the patch from the file manifest whose SHA-256 is
// from to the verified set of ref, or nil when from is not the digest of a
// file manifest in the store (checked on its bytes) or is ref's own.
func (s *Server) filesPatch(ctx context.Context, app, from string, ref manifest.BuildRef, set *fileSet) []byte {
	if from == "" || from == ref.FilesSHA256 || !isSHA256(from) {
		return nil
	}
	patch, _ := s.files.patches.get(ctx, app+"/"+from+"/"+ref.FilesSHA256, func() ([]byte, error) {
		stored, err := s.man.read(manifest.FileManifestKey(app, from), manifest.MaxFileManifestSize)
		if err != nil {
			return nil, nil
		}
		base, err := manifest.DecodeStoredFileManifest(stored, manifest.MaxFileManifestSize)
		if err != nil {
			s.log.Error().Err(err).Str("manifest", from).Msg("a stored file manifest does not decode; devices on it get whole manifests")
			return nil, nil
		}
		if sum := sha256.Sum256(base); hex.EncodeToString(sum[:]) != from {
			s.log.Error().Str("manifest", from).Msg("a stored file manifest does not match its digest; devices on it get whole manifests")
			return nil, nil
		}
		patch, err := manifest.MakeFilesPatch(app, base, set.raw)
		if err != nil {
			s.log.Error().Err(err).Str("manifest", from).Msg("no file manifest patch")
			return nil, nil
		}
		if !manifest.PatchPays(patch, int64(len(set.raw))) {
			return nil, nil
		}
		return patch, nil
	})
	return patch
}

// isSHA256 reports whether s is 64 lowercase hex digits.
func isSHA256(s string) bool {
	if len(s) != 64 {
		return false
	}
	for _, c := range s {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}
