// Package store is where deploy keeps bundles, build records, channel
// pointers and the ACL: one small interface ([Store]) with conditional
// writes, and its backends in store/file (a local folder) and store/s3.
package store

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
)

// Store is where bundles, build records, channel pointers and the ACL live.
// Keys are slash-separated and relative to the store's root (an S3 prefix or
// a folder). Backends live in their own packages (store/file, store/s3).
//
// Error contract, shared by every backend:
//   - a missing key is reported as an error that wraps fs.ErrNotExist;
//   - a create-only Put on a key that exists wraps fs.ErrExist;
//   - a compare-and-swap Put whose IfMatch no longer matches wraps ErrConflict;
//   - a missing bucket (S3) wraps ErrNoBucket, never fs.ErrNotExist: the
//     whole store is missing, not one key;
//   - every other error is wrapped with the backend and operation as prefix,
//     such as "s3: get apps/x/latest.json: ...".
type Store interface {
	// Get opens the object at key. The caller closes the reader.
	Get(ctx context.Context, key string) (io.ReadCloser, Info, error)

	// Stat returns the object's Info without reading it.
	Stat(ctx context.Context, key string) (Info, error)

	// Put writes r to key, all or nothing: a reader never sees a partial
	// object. Options make the write create-only or compare-and-swap.
	Put(ctx context.Context, key string, r io.Reader, opt PutOptions) (Info, error)

	// List returns the objects whose keys start with prefix, sorted by key.
	List(ctx context.Context, prefix string) ([]Info, error)

	// Delete removes key. Deleting a missing key is not an error.
	Delete(ctx context.Context, key string) error

	// Location is a human-readable address of key (a path or an s3:// URL).
	Location(key string) string
}

// A Batch writes many create-only objects with one durability barrier
// instead of one per object. Put stages an object; Commit makes every
// staged object durable, then visible, so a crash never leaves a visible
// object whose bytes were lost. A staged key that some other writer
// creates first keeps that writer's object, as a create-only Put would.
type Batch interface {
	// Put stages r for key. It fails with fs.ErrExist when opt.CreateOnly
	// and key exists already.
	Put(ctx context.Context, key string, r io.Reader, opt PutOptions) (Info, error)
	// Commit makes what was staged durable and visible.
	Commit(ctx context.Context) error
	// Close discards what was staged and not committed.
	Close() error
}

// A Batcher is a Store with a faster way to write many objects.
type Batcher interface {
	NewBatch() Batch
}

// NewBatch returns s's own Batch when it has one, else a Batch whose Put
// writes through to s at once (each object durable when Put returns).
func NewBatch(s Store) Batch {
	if b, ok := s.(Batcher); ok {
		return b.NewBatch()
	}
	return direct{s}
}

type direct struct{ Store }

func (direct) Commit(context.Context) error { return nil }
func (direct) Close() error                 { return nil }

// A Multipart store writes large objects in parts (S3 multipart uploads).
// A write whose process dies before it completes or aborts leaves an
// incomplete upload behind: never visible to Get or List, but stored (and,
// on S3, billed) until it is aborted.
type Multipart interface {
	// Uploads lists the incomplete uploads to keys that start with
	// prefix, with the bytes of their parts, sorted by key.
	Uploads(ctx context.Context, prefix string) ([]Upload, error)
	// AbortUpload removes an incomplete upload and its parts. Aborting
	// one that has completed or been aborted already is not an error.
	AbortUpload(ctx context.Context, u Upload) error
}

// Upload is an incomplete upload of a Multipart store.
type Upload struct {
	Key     string
	ID      string // the store's id of the upload
	Size    int64  // bytes in the parts uploaded so far
	Started time.Time
}

// PutOptions control a Put.
type PutOptions struct {
	// CreateOnly fails with fs.ErrExist if the key already exists
	// (S3: If-None-Match: *).
	CreateOnly bool
	// IfMatch, when set, fails with ErrConflict unless the object's current
	// ETag equals it (S3: If-Match).
	IfMatch string
	// Size of r in bytes when known, else -1 or 0 for unknown.
	Size int64
	// ContentType, ContentEncoding and CacheControl are stored as object
	// metadata where the backend supports it (S3), and sent with the object
	// over HTTP; the file backend ignores them.
	ContentType     string
	ContentEncoding string
	CacheControl    string
	// Transient marks an object that other processes must see but that
	// need not survive a crash of the machine, such as an upload's lease:
	// the file backend skips its syncs. The write is as atomic as any.
	Transient bool
}

// Info describes a stored object.
type Info struct {
	Key     string
	Size    int64
	ETag    string // opaque; pass to PutOptions.IfMatch
	ModTime time.Time
}

// ErrConflict reports that a compare-and-swap Put lost a race: the object
// changed since its ETag was read. Re-read and try again.
var ErrConflict = errors.New("object changed since it was read")

// ErrNoBucket reports that the bucket a store lives in does not exist, as
// when store= names a bucket with a typo. Unlike a missing key, nothing
// can work until the store URL or the bucket is fixed.
var ErrNoBucket = errors.New("the bucket does not exist")

// ErrTooLarge reports that an object is over the size a reader accepts.
var ErrTooLarge = errors.New("object is over the size limit")

// ReadSmall reads a whole small object, such as an envelope. An object over
// limit bytes is refused with an error wrapping [ErrTooLarge], read no
// further.
func ReadSmall(ctx context.Context, s Store, key string, limit int) ([]byte, Info, error) {
	rc, info, err := s.Get(ctx, key)
	if err != nil {
		return nil, Info{}, err
	}
	defer rc.Close()
	data, err := io.ReadAll(io.LimitReader(rc, int64(limit)+1))
	if err != nil {
		return nil, Info{}, fmt.Errorf("read %s: %w", s.Location(key), err)
	}
	if len(data) > limit {
		return nil, Info{}, fmt.Errorf("%s is over %d bytes: %w", s.Location(key), limit, ErrTooLarge)
	}
	return data, info, nil
}

// CheckKey reports whether key is a valid store key: slash-separated
// segments, none empty, none starting with a dot (backends keep their own
// files there), no backslash and no control character. Every backend calls
// it, so a key is valid on all of them or on none.
func CheckKey(key string) error {
	if key == "" {
		return errors.New("invalid key: empty")
	}
	for _, seg := range strings.Split(key, "/") {
		if seg == "" || strings.HasPrefix(seg, ".") {
			return fmt.Errorf("invalid key %q: empty or dot segment", key)
		}
	}
	for _, r := range key {
		if r == '\\' || r < 0x20 || r == 0x7f {
			return fmt.Errorf("invalid key %q: backslash or control character", key)
		}
	}
	return nil
}
