package file

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sync"

	"github.com/cartona/deploy/store"
)

// NewBatch returns a batch that writes its objects to temporary files
// without syncing them one by one, then at Commit syncs them all with one
// barrier (syncfs on Linux) before linking them into place.
func (s *Store) NewBatch() store.Batch { return &batch{s: s} }

type batch struct {
	s      *Store
	mu     sync.Mutex
	staged []staged
}

type staged struct {
	tmp, path string
	replace   bool
}

// Put stages r for key in a temporary file.
func (b *batch) Put(ctx context.Context, key string, r io.Reader, opt store.PutOptions) (store.Info, error) {
	if opt.IfMatch != "" {
		return store.Info{}, fmt.Errorf("file store: put %s: a batch cannot compare and swap", key)
	}
	p, err := b.s.path(key)
	if err != nil {
		return store.Info{}, err
	}
	if opt.CreateOnly {
		if _, err := os.Lstat(p); err == nil {
			return store.Info{}, fmt.Errorf("file store: put %s: %w", key, fs.ErrExist)
		}
	}
	tmp, info, err := b.s.writeTemp(ctx, key, r, false)
	if err != nil {
		return store.Info{}, err
	}
	b.mu.Lock()
	b.staged = append(b.staged, staged{tmp: tmp, path: p, replace: !opt.CreateOnly})
	b.mu.Unlock()
	return info, nil
}

// Commit makes the staged files durable, links them into place (a key
// created meanwhile by another writer keeps its object unless the Put
// replaced), and makes the links durable.
func (b *batch) Commit(ctx context.Context) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.staged) == 0 {
		return nil
	}
	if err := syncFiles(b.s.Root, b.staged); err != nil {
		return fmt.Errorf("file store: sync: %w", err)
	}
	dirs := map[string]bool{}
	for len(b.staged) > 0 {
		if err := ctx.Err(); err != nil {
			return err
		}
		st := b.staged[0]
		dir := filepath.Dir(st.path)
		if !dirs[dir] {
			if err := os.MkdirAll(dir, 0o755); err != nil {
				return fmt.Errorf("file store: %w", err)
			}
			dirs[dir] = true
		}
		var err error
		if st.replace {
			err = os.Rename(st.tmp, st.path)
		} else if err = os.Link(st.tmp, st.path); errors.Is(err, fs.ErrExist) {
			err = nil
		}
		if err != nil {
			return fmt.Errorf("file store: commit %s: %w", st.path, err)
		}
		os.Remove(st.tmp)
		b.staged = b.staged[1:]
	}
	for dir := range dirs {
		syncDir(dir)
	}
	return nil
}

// Close removes what was staged and not committed.
func (b *batch) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, st := range b.staged {
		os.Remove(st.tmp)
	}
	b.staged = nil
	return nil
}

// fsyncEach makes each staged file durable.
func fsyncEach(files []staged) error {
	for _, st := range files {
		f, err := os.OpenFile(st.tmp, os.O_RDWR, 0)
		if err != nil {
			return err
		}
		err = f.Sync()
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return err
		}
	}
	return nil
}
