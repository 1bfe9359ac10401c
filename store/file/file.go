// Package file is the local-folder backend of store.Store: the embedded
// default, which works with nothing configured.
//
// Every write goes to a temporary file in the store's .tmp folder, is synced,
// and is then renamed (or, for create-only writes, hard-linked) into place, so
// a reader never sees a partial object and a crash leaves no half-written key.
// A batch syncs all its temporary files at once before linking them.
// Compare-and-swap writes hold an advisory lock on the store's lock file.
package file

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/cartona/deploy/internal/bufcopy"
	"github.com/cartona/deploy/internal/lockfile"
	"github.com/cartona/deploy/store"
)

const (
	tmpDir   = ".tmp"
	lockFile = ".lock"
	// Objects up to this size get an ETag from their content (like S3's MD5);
	// larger ones, which are immutable bundles, from their file's metadata
	// (see statETag).
	hashedETagLimit = 1 << 20
)

// ErrNotFolder reports a store path that is, or goes through, a file.
var ErrNotFolder = errors.New("not a folder")

// Store keeps objects as files under Root.
type Store struct {
	Root string
}

var _ store.Store = (*Store)(nil)

// Open returns a store rooted at dir, creating the folder if needed.
func Open(dir string) (*Store, error) {
	if !filepath.IsAbs(dir) {
		return nil, fmt.Errorf("file store: %q is not an absolute path; use file:///absolute/path", dir)
	}
	if err := os.MkdirAll(filepath.Join(dir, tmpDir), 0o755); err != nil {
		var pe *fs.PathError
		if errors.Is(err, syscall.ENOTDIR) && errors.As(err, &pe) {
			return nil, fmt.Errorf("file store: %s is a file, %w; check store=", pe.Path, ErrNotFolder)
		}
		return nil, fmt.Errorf("file store: %w", err)
	}
	sweepTemp(filepath.Join(dir, tmpDir))
	return &Store{Root: dir}, nil
}

// staleTemp is the age past which a temporary file is left over from a
// writer that crashed: no write takes that long.
const staleTemp = 24 * time.Hour

// sweepTemp removes temporary files left by writers that crashed. Errors
// are ignored: the files are only in the way of nothing.
func sweepTemp(dir string) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, e := range entries {
		if fi, err := e.Info(); err == nil && time.Since(fi.ModTime()) > staleTemp {
			os.Remove(filepath.Join(dir, e.Name()))
		}
	}
}

func (s *Store) path(key string) (string, error) {
	if err := store.CheckKey(key); err != nil {
		return "", fmt.Errorf("file store: %w", err)
	}
	return filepath.Join(s.Root, filepath.FromSlash(key)), nil
}

// Location returns the file path of key.
func (s *Store) Location(key string) string {
	return filepath.Join(s.Root, filepath.FromSlash(key))
}

// Get opens the file at key.
func (s *Store) Get(ctx context.Context, key string) (io.ReadCloser, store.Info, error) {
	p, err := s.path(key)
	if err != nil {
		return nil, store.Info{}, err
	}
	f, err := os.Open(p)
	if err != nil {
		return nil, store.Info{}, fmt.Errorf("file store: get %s: %w", key, err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, store.Info{}, fmt.Errorf("file store: get %s: %w", key, err)
	}
	if fi.IsDir() {
		f.Close()
		return nil, store.Info{}, fmt.Errorf("file store: get %s: %w", key, fs.ErrNotExist)
	}
	info := store.Info{Key: key, Size: fi.Size(), ModTime: fi.ModTime()}
	if fi.Size() > hashedETagLimit {
		info.ETag = statETag(fi)
		return f, info, nil
	}
	data, err := io.ReadAll(f)
	f.Close()
	if err != nil {
		return nil, store.Info{}, fmt.Errorf("file store: get %s: %w", key, err)
	}
	info.Size, info.ETag = int64(len(data)), contentETag(data)
	return io.NopCloser(bytes.NewReader(data)), info, nil
}

// Stat returns the Info of key.
func (s *Store) Stat(ctx context.Context, key string) (store.Info, error) {
	rc, info, err := s.Get(ctx, key)
	if err != nil {
		return store.Info{}, err
	}
	rc.Close()
	return info, nil
}

// Put writes r to key atomically.
func (s *Store) Put(ctx context.Context, key string, r io.Reader, opt store.PutOptions) (store.Info, error) {
	p, err := s.path(key)
	if err != nil {
		return store.Info{}, err
	}
	if opt.CreateOnly {
		if _, err := os.Lstat(p); err == nil {
			return store.Info{}, fmt.Errorf("file store: put %s: %w", key, fs.ErrExist)
		}
	}
	tmp, info, err := s.writeTemp(ctx, key, r, !opt.Transient)
	if err != nil {
		return store.Info{}, err
	}
	defer os.Remove(tmp)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return store.Info{}, fmt.Errorf("file store: put %s: %w", key, err)
	}
	if opt.CreateOnly {
		// A hard link fails if the target exists: an atomic create-only.
		if err := os.Link(tmp, p); err != nil {
			if errors.Is(err, fs.ErrExist) {
				return store.Info{}, fmt.Errorf("file store: put %s: %w", key, fs.ErrExist)
			}
			return store.Info{}, fmt.Errorf("file store: put %s: %w", key, err)
		}
		// Unlinked now, not on return: that changes the file's ctime, so
		// the ETag below would not be the one Stat gives.
		os.Remove(tmp)
	} else {
		unlock, err := lockfile.Lock(filepath.Join(s.Root, lockFile))
		if err != nil {
			return store.Info{}, fmt.Errorf("file store: lock: %w", err)
		}
		defer unlock()
		if opt.IfMatch != "" {
			cur, err := s.Stat(ctx, key)
			if errors.Is(err, fs.ErrNotExist) || (err == nil && cur.ETag != opt.IfMatch) {
				return store.Info{}, fmt.Errorf("file store: put %s: %w", key, store.ErrConflict)
			}
			if err != nil {
				return store.Info{}, err
			}
		}
		if err := os.Rename(tmp, p); err != nil {
			return store.Info{}, fmt.Errorf("file store: put %s: %w", key, err)
		}
	}
	if !opt.Transient {
		syncDir(filepath.Dir(p))
	}
	if info.Size > hashedETagLimit {
		fi, err := os.Stat(p)
		if err != nil {
			return store.Info{}, fmt.Errorf("file store: put %s: %w", key, err)
		}
		info.ETag, info.ModTime = statETag(fi), fi.ModTime()
	}
	return info, nil
}

// writeTemp copies r into a temporary file, synced if sync, and returns its
// path.
func (s *Store) writeTemp(ctx context.Context, key string, r io.Reader, sync bool) (string, store.Info, error) {
	f, err := os.CreateTemp(filepath.Join(s.Root, tmpDir), "put-*")
	if err != nil {
		return "", store.Info{}, fmt.Errorf("file store: put %s: %w", key, err)
	}
	f.Chmod(0o644) // readable like any published file; CreateTemp makes 0600
	h := sha256.New()
	n, err := bufcopy.Copy(io.MultiWriter(f, h), ctxReader{ctx, r})
	if err == nil && sync {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(f.Name())
		return "", store.Info{}, fmt.Errorf("file store: put %s: %w", key, err)
	}
	info := store.Info{Key: key, Size: n}
	if n <= hashedETagLimit {
		info.ETag = hex.EncodeToString(h.Sum(nil)[:16])
	}
	return f.Name(), info, nil
}

// List returns the objects under prefix, sorted by key, leaving out files
// the store could not have written (see store.CheckKey).
func (s *Store) List(ctx context.Context, prefix string) ([]store.Info, error) {
	dir := s.Root
	if i := strings.LastIndex(prefix, "/"); i >= 0 {
		dir = filepath.Join(s.Root, filepath.FromSlash(prefix[:i]))
	}
	var out []store.Info
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		rel, err := filepath.Rel(s.Root, p)
		if err != nil {
			return err
		}
		key := filepath.ToSlash(rel)
		if d.IsDir() {
			if key == tmpDir {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasPrefix(key, prefix) || store.CheckKey(key) != nil {
			return nil // not the prefix, or a file the store did not write (.DS_Store, the lock)
		}
		fi, err := d.Info()
		if errors.Is(err, fs.ErrNotExist) {
			return nil // deleted since the folder was read
		}
		if err != nil {
			return err
		}
		out = append(out, store.Info{Key: key, Size: fi.Size(), ModTime: fi.ModTime()})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("file store: list %s: %w", prefix, err)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out, nil
}

// Delete removes key.
func (s *Store) Delete(ctx context.Context, key string) error {
	p, err := s.path(key)
	if err != nil {
		return err
	}
	if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("file store: delete %s: %w", key, err)
	}
	return nil
}

func contentETag(data []byte) string {
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:16])
}

// statETag is the ETag of an object over hashedETagLimit, made without
// reading it. Size and modification time alone would not do: whoever can
// write the file can rewrite it with as many bytes and set its mtime back
// (touch -r), and a reader that trusts the ETag (the tracker caches a
// bundle's hash check per ETag) would take the new bytes for the old. So it
// also holds the inode number, which a replaced file changes, and the
// change time (ctime), which every write, rename or touch moves to the
// current time and nothing sets back. Two changes within one tick of a
// coarse file-time clock (a few milliseconds; kernels since Linux 6.13 give
// a finer time to a change after a read of the ctime) may share a ctime.
// Where the system gives neither (Windows, Plan 9, WebAssembly), the ETag
// is size and mtime only.
func statETag(fi fs.FileInfo) string {
	if ino, ctime, ok := fileChange(fi); ok {
		return fmt.Sprintf("%x-%x-%x-%x", fi.Size(), fi.ModTime().UnixNano(), ino, ctime)
	}
	return fmt.Sprintf("%x-%x", fi.Size(), fi.ModTime().UnixNano())
}

// syncDir makes a rename durable. Not every platform can sync a folder, so
// errors are ignored.
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
}

type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
