package bufcopy

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"testing"
)

func TestCopyFromFile(t *testing.T) {
	want := bytes.Repeat([]byte("0123456789abcdef"), 5000) // over one buffer
	p := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(p, want, 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var got bytes.Buffer
	n, err := Copy(&got, f)
	if err != nil || n != int64(len(want)) || !bytes.Equal(got.Bytes(), want) {
		t.Fatalf("Copy = %d, %v; content equal %v", n, err, bytes.Equal(got.Bytes(), want))
	}
}

// A copy from a file takes no new buffer: that is the package's point.
func TestCopyAllocatesNoBuffer(t *testing.T) {
	p := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(p, bytes.Repeat([]byte("x"), 1000), 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var dst bytes.Buffer
	dst.Grow(4096)
	Copy(&dst, f) // warm the pool
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for range 100 {
		f.Seek(0, 0)
		dst.Reset()
		Copy(io.MultiWriter(&dst), f) // as a hash or zip writer
	}
	runtime.ReadMemStats(&after)
	// io.Copy allocates 100 × 32 KiB here. The pool may drop buffers (the
	// race detector makes it drop a quarter), so allow up to half that.
	if n := after.TotalAlloc - before.TotalAlloc; n > 100*32<<10/2 {
		t.Fatalf("100 copies allocated %d bytes, want far fewer than a 32 KiB buffer each", n)
	}
}
