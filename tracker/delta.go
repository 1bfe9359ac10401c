package tracker

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
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

// fileSet is a build's verified file manifest as the Capgo plugin takes it:
// the JSON array of {file_name, file_hash, download_url}.
type fileSet struct {
	entries []byte
	files   int
}

// capgoEntry is one entry of a Capgo manifest.
type capgoEntry struct {
	FileName    string `json:"file_name"`
	FileHash    string `json:"file_hash"`
	DownloadURL string `json:"download_url"`
}

// fileSets verifies and remembers the file sets of builds.
type fileSets struct {
	recent *ttlCache[*fileSet] // nil value: answer with the zip
	mu     sync.Mutex
	ok     map[string]*fileSet // verified, by fileSetKey
}

func newFileSets(now func() time.Time) *fileSets {
	return &fileSets{recent: newTTLCache[*fileSet](deltaRecheck, maxCacheKeys, now), ok: map[string]*fileSet{}}
}

func fileSetKey(app string, ref manifest.BuildRef) string {
	return fmt.Sprintf("%s/%s/%d", app, ref.FilesSHA256, ref.FilesSize)
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
		if len(s.files.ok) >= maxCacheKeys {
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
	m, err := manifest.CheckFileManifest(ref, app, data)
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
	return &fileSet{entries: b, files: len(entries)}, nil
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
	head, err := json.Marshal(ans)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	var body bytes.Buffer
	body.Grow(len(head) + len(set.entries) + 16)
	body.Write(head[:len(head)-1])
	body.WriteString(`,"manifest":`)
	body.Write(set.entries)
	body.WriteString("}\n")
	writeRaw(w, http.StatusOK, body.Bytes())
}
