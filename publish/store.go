package publish

import (
	"context"
	"errors"
	"io"
	"time"
)

// Store is where bundles, build records, channel pointers and the ACL live.
// Keys are slash-separated and relative to the store's root (an S3 prefix or
// a folder). Backends live in their own packages (publish/file, publish/s3).
//
// Error contract, shared by every backend:
//   - a missing key is reported as an error that wraps fs.ErrNotExist;
//   - a create-only Put on a key that exists wraps fs.ErrExist;
//   - a compare-and-swap Put whose IfMatch no longer matches wraps ErrConflict;
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
	// ContentType and CacheControl are stored as object metadata where the
	// backend supports it (S3); the file backend ignores them.
	ContentType  string
	CacheControl string
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
