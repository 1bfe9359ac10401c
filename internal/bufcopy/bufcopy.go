// Package bufcopy copies with pooled buffers. A build is mostly small
// files, and io.Copy from an *os.File allocates a new 32 KiB buffer for
// each: more work for the garbage collector than the copy itself.
package bufcopy

import (
	"io"
	"sync"
)

var buffers = sync.Pool{New: func() any { return new([32 << 10]byte) }}

// Copy is io.Copy with a buffer from the pool.
func Copy(dst io.Writer, src io.Reader) (int64, error) {
	buf := buffers.Get().(*[32 << 10]byte)
	defer buffers.Put(buf)
	// Hiding io.WriterTo and io.ReaderFrom makes io.CopyBuffer use buf.
	return io.CopyBuffer(struct{ io.Writer }{dst}, struct{ io.Reader }{src}, buf[:])
}
