package tracker

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"io/fs"
	"net/http"
	"strconv"
	"sync"

	"github.com/cartona/deploy/manifest"
	"github.com/cartona/deploy/store"
)

// smallBundle is the largest bundle read into memory to be served when the
// store's reader cannot seek. Larger ones are streamed, so many concurrent
// downloads never hold many bundles in memory.
const smallBundle = 1 << 20

// bundleVersion is one version of a bundle object: an object rewritten in
// place differs in modification time or ETag.
type bundleVersion struct {
	key, sha256, etag string
	size, modTime     int64
}

func versionOf(b *buildInfo, info store.Info) bundleVersion {
	return bundleVersion{key: b.ref.Bundle, sha256: b.ref.SHA256, etag: info.ETag, size: info.Size, modTime: info.ModTime.UnixNano()}
}

// bundleChecks remembers whether bundle versions match the sha256 of their
// manifests, so a large bundle is hashed once rather than per download.
// Concurrent checks of one version share a single hash.
type bundleChecks struct {
	mu       sync.Mutex
	verdicts map[bundleVersion]bool
	calls    map[bundleVersion]chan struct{}
}

func newBundleChecks() *bundleChecks {
	return &bundleChecks{verdicts: map[bundleVersion]bool{}, calls: map[bundleVersion]chan struct{}{}}
}

// known returns the cached verdict of v, if any.
func (c *bundleChecks) known(v bundleVersion) (ok, known bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	ok, known = c.verdicts[v]
	return ok, known
}

// set caches the verdict of v.
func (c *bundleChecks) set(v bundleVersion, ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.verdicts) >= maxCacheKeys {
		clear(c.verdicts)
	}
	c.verdicts[v] = ok
}

// check returns whether v matches its sha256: the cached verdict, or else
// hash's, which is cached unless hash fails. One caller hashes while the
// others wait; if it fails, a waiter tries in its turn.
func (c *bundleChecks) check(ctx context.Context, v bundleVersion, hash func() (bool, error)) (bool, error) {
	for {
		c.mu.Lock()
		if ok, known := c.verdicts[v]; known {
			c.mu.Unlock()
			return ok, nil
		}
		wait, busy := c.calls[v]
		if !busy {
			done := make(chan struct{})
			c.calls[v] = done
			c.mu.Unlock()
			return c.fill(v, done, hash)
		}
		c.mu.Unlock()
		select {
		case <-wait:
		case <-ctx.Done():
			return false, ctx.Err()
		}
	}
}

func (c *bundleChecks) fill(v bundleVersion, done chan struct{}, hash func() (bool, error)) (ok bool, err error) {
	defer func() {
		if err == nil {
			c.set(v, ok)
		}
		c.mu.Lock()
		delete(c.calls, v)
		c.mu.Unlock()
		close(done)
	}()
	return hash()
}

// hashBundle reads v's bytes from r and reports whether they match its
// sha256 and size, logging a mismatch.
func (s *Server) hashBundle(v bundleVersion, r io.Reader) (bool, error) {
	err := manifest.VerifyBundle(manifest.BuildRef{SHA256: v.sha256, Size: v.size}, r)
	if bad := (*manifest.Error)(nil); errors.As(err, &bad) {
		s.log.Error().Str("key", v.key).Str("rule", string(bad.Rule)).Msg("bundle sha256 differs from its manifest; it is not served")
		return false, nil
	}
	return err == nil, err
}

// serveBundle sends a bundle from the store, only once its bytes are known
// to match the manifest's sha256 and size: with http.ServeContent (Range,
// If-None-Match) when its reader can seek or it is small enough to buffer,
// and else as a plain stream with Content-Length. Verdicts on large bundles
// are cached per object version (key, size, modification time, ETag).
func (s *Server) serveBundle(w http.ResponseWriter, r *http.Request, b *buildInfo) {
	ctx := r.Context()
	rc, info, err := s.cfg.Store.Get(ctx, b.ref.Bundle)
	if err != nil {
		s.bundleUnavailable(w, r, b, err)
		return
	}
	if !s.sizeMatches(w, r, b, info) {
		rc.Close()
		return
	}
	v := versionOf(b, info)
	rs, seekable := rc.(io.ReadSeeker)
	switch {
	case seekable:
		defer rc.Close()
		ok, err := s.bundles.check(ctx, v, func() (bool, error) {
			ok, err := s.hashBundle(v, rs)
			if _, serr := rs.Seek(0, io.SeekStart); err == nil {
				err = serr
			}
			return ok, err
		})
		if s.bundleVerified(w, r, b, ok, err) {
			bundleHeaders(w, b)
			http.ServeContent(w, r, "", info.ModTime, rs)
		}
	case info.Size <= smallBundle:
		defer rc.Close()
		data, err := io.ReadAll(io.LimitReader(rc, info.Size+1))
		var ok bool
		if err == nil {
			ok, err = s.hashBundle(v, bytes.NewReader(data))
		}
		if s.bundleVerified(w, r, b, ok, err) {
			bundleHeaders(w, b)
			http.ServeContent(w, r, "", info.ModTime, bytes.NewReader(data))
		}
	default:
		s.serveStream(w, r, b, rc, v)
	}
}

// checkStored reports whether the bundle object in the store now matches
// b's sha256 and size, and answers the request itself when it does not, as
// serveBundle would. The tracker checks before it sends a device to the
// CDN, which serves whatever object the store holds. It costs one Stat:
// the object is read and hashed only for a version (ETag, size,
// modification time) that has no verdict yet, once however many devices
// ask at the same time.
func (s *Server) checkStored(w http.ResponseWriter, r *http.Request, b *buildInfo) bool {
	ctx := r.Context()
	info, err := s.cfg.Store.Stat(ctx, b.ref.Bundle)
	if err != nil {
		s.bundleUnavailable(w, r, b, err)
		return false
	}
	if !s.sizeMatches(w, r, b, info) {
		return false
	}
	v := versionOf(b, info)
	ok, err := s.bundles.check(ctx, v, func() (bool, error) { return s.hashObject(ctx, v, b) })
	return s.bundleVerified(w, r, b, ok, err)
}

// sizeMatches reports whether a stored bundle has its manifest's size,
// and answers the request itself when it has not.
func (s *Server) sizeMatches(w http.ResponseWriter, r *http.Request, b *buildInfo, info store.Info) bool {
	if info.Size == b.ref.Size {
		return true
	}
	s.log.Error().Str("key", b.ref.Bundle).Int64("size", info.Size).Int64("want", b.ref.Size).Msg("bundle size differs from its manifest")
	s.bundleMismatch(w, r, b)
	return false
}

// serveStream sends a large bundle whose reader cannot seek (S3), and
// closes rc. A stream cannot be rewound, so on the first request for
// version v it is hashed from a reader of its own and then opened again.
func (s *Server) serveStream(w http.ResponseWriter, r *http.Request, b *buildInfo, rc io.ReadCloser, v bundleVersion) {
	if ok, known := s.bundles.known(v); !known || !ok {
		rc.Close()
		ok, err := s.bundles.check(r.Context(), v, func() (bool, error) { return s.hashObject(r.Context(), v, b) })
		if !s.bundleVerified(w, r, b, ok, err) {
			return
		}
		var info store.Info
		if rc, info, err = s.cfg.Store.Get(r.Context(), b.ref.Bundle); err != nil {
			s.bundleUnavailable(w, r, b, err)
			return
		}
		if versionOf(b, info) != v {
			rc.Close()
			s.bundleUnavailable(w, r, b, errBundleChanged)
			return
		}
	}
	defer rc.Close()
	bundleHeaders(w, b)
	w.Header().Set("Content-Length", strconv.FormatInt(v.size, 10))
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		s.streamVerified(w, rc, v)
	}
}

// errBundleChanged reports a bundle object that changed while it was read.
var errBundleChanged = errors.New("the bundle changed in the store while it was verified")

// hashObject reads version v of a bundle from the store to hash it.
func (s *Server) hashObject(ctx context.Context, v bundleVersion, b *buildInfo) (bool, error) {
	rc, info, err := s.cfg.Store.Get(ctx, v.key)
	if err != nil {
		return false, err
	}
	defer rc.Close()
	if versionOf(b, info) != v {
		return false, errBundleChanged
	}
	return s.hashBundle(v, rc)
}

// streamVerified copies a bundle whose version was verified to w, hashing
// it again on the way and holding back its last byte until the sum
// matches: if the object changed without a new version, the device gets a
// cut-off download, never a complete wrong one.
func (s *Server) streamVerified(w http.ResponseWriter, rc io.Reader, v bundleVersion) {
	h := sha256.New()
	src := io.TeeReader(rc, h)
	if _, err := io.CopyN(w, src, v.size-1); err != nil {
		return // the device left, or the store failed: the answer is cut off
	}
	last := make([]byte, 1)
	if _, err := io.ReadFull(src, last); err != nil {
		panic(http.ErrAbortHandler)
	}
	if hex.EncodeToString(h.Sum(nil)) != v.sha256 {
		s.log.Error().Str("key", v.key).Msg("bundle sha256 differs from its manifest; the download was cut off")
		s.bundles.set(v, false)
		panic(http.ErrAbortHandler)
	}
	w.Write(last)
}

// bundleVerified answers a failed or negative check and reports whether
// the bundle may be served.
func (s *Server) bundleVerified(w http.ResponseWriter, r *http.Request, b *buildInfo, ok bool, err error) bool {
	switch {
	case err != nil:
		s.bundleUnavailable(w, r, b, err)
	case !ok:
		s.bundleMismatch(w, r, b)
	}
	return err == nil && ok
}

func (s *Server) bundleUnavailable(w http.ResponseWriter, r *http.Request, b *buildInfo, err error) {
	switch {
	case errors.Is(err, fs.ErrNotExist):
		s.log.Error().Str("key", b.ref.Bundle).Msg("a verified build's bundle is missing from the store")
		s.writeError(w, r, errorf(codeNotServable, "the bundle of build %s is missing from the store; it is not served", b.ref.ID))
		return
	case errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded):
		s.writeError(w, r, err)
		return
	default:
		s.log.Error().Err(err).Str("key", b.ref.Bundle).Msg("store read failed")
	}
	s.writeError(w, r, errorf(codeUnavailable, "the bundle of build %s cannot be read from the store right now; try again later", b.ref.ID))
}

func (s *Server) bundleMismatch(w http.ResponseWriter, r *http.Request, b *buildInfo) {
	s.writeError(w, r, errorf(codeNotServable, "the bundle of build %s does not match its manifest; it is not served", b.ref.ID))
}

func bundleHeaders(w http.ResponseWriter, b *buildInfo) {
	h := w.Header()
	h.Set("Content-Type", "application/zip")
	h.Set("ETag", `"`+b.ref.SHA256+`"`)
	h.Set("Cache-Control", "public, max-age=31536000, immutable")
}
