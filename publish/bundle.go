package publish

import (
	"archive/zip"
	"bytes"
	"compress/flate"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"time"
	"unicode/utf8"
)

// Bundle is a web build zipped the way the Capgo plugin expects it.
type Bundle struct {
	Path   string // the zip, a temporary file; Remove it when done
	SHA256 string // lowercase hex of the zip's bytes
	Size   int64
	Files  int
	// NotifyAppReady reports whether some .js file calls notifyAppReady;
	// without that call the plugin rolls the bundle back.
	NotifyAppReady bool
}

// Remove deletes the bundle's temporary file.
func (b *Bundle) Remove() error { return os.Remove(b.Path) }

// ErrBadBuild is wrapped by every error about the content of a web build
// folder: missing, empty, without index.html, or with unsafe names.
var ErrBadBuild = errors.New("bad web build")

// zipTime is the fixed modification time of every entry, so that the same
// folder always gives the same bytes.
var zipTime = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)

const (
	// Files up to this size are compressed in parallel in memory; larger
	// ones are streamed by the writer.
	parallelLimit = 4 << 20
	// Raw bytes held by in-flight parallel jobs at most.
	inflightBudget = 24 << 20
)

type entry struct {
	name string // slash-separated name in the zip; folders end in "/"
	path string // file on disk
	size int64
}

// Zip builds a deterministic, Capgo-compatible zip of dir into a temporary
// file in tmpDir (the system default if empty): files at the root, sorted,
// every file Deflate-compressed, fixed times and modes. progress, if not nil,
// is called with the raw bytes zipped so far and in all.
func Zip(dir, tmpDir string, progress func(done, total int64)) (*Bundle, error) {
	entries, total, err := collect(dir)
	if err != nil {
		return nil, err
	}
	f, err := os.CreateTemp(tmpDir, "deploy-bundle-*.zip")
	if err != nil {
		return nil, fmt.Errorf("create temporary bundle: %w", err)
	}
	b, err := writeZip(f, entries, total, progress)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(f.Name())
		return nil, err
	}
	b.Path = f.Name()
	return b, nil
}

// collect walks dir and returns its entries sorted by name, checking the
// rules of a bundle on the way.
func collect(dir string) ([]entry, int64, error) {
	root, err := filepath.Abs(dir)
	if err != nil {
		return nil, 0, err
	}
	fi, err := os.Stat(root)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, 0, fmt.Errorf("%w: folder %s does not exist; run your web build (for example `ionic build`) or pass dir=<folder>", ErrBadBuild, dir)
	}
	if err != nil {
		return nil, 0, fmt.Errorf("%w: %v", ErrBadBuild, err)
	}
	if !fi.IsDir() {
		return nil, 0, fmt.Errorf("%w: %s is not a folder; pass dir=<the folder of your web build>", ErrBadBuild, dir)
	}
	realRoot, err := filepath.EvalSymlinks(root)
	if err != nil {
		return nil, 0, err
	}
	var entries []entry
	var total int64
	hasIndex := false
	err = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return fmt.Errorf("%w: %v", ErrBadBuild, err)
		}
		if p == root {
			return nil
		}
		base := d.Name()
		if base == ".DS_Store" || base == "__MACOSX" || base == "Thumbs.db" {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		rel, _ := filepath.Rel(root, p)
		name := filepath.ToSlash(rel)
		if err := checkName(name); err != nil {
			return err
		}
		info, err := os.Stat(p) // follows symlinks
		if d.Type()&fs.ModeSymlink != 0 {
			target, terr := filepath.EvalSymlinks(p)
			if terr != nil || err != nil {
				return fmt.Errorf("%w: %s is a broken symlink; remove it or copy the file in", ErrBadBuild, name)
			}
			if r, _ := filepath.Rel(realRoot, target); r == ".." || strings.HasPrefix(r, ".."+string(filepath.Separator)) || filepath.IsAbs(r) {
				return fmt.Errorf("%w: %s is a symlink to %s, outside the folder; copy the file in instead", ErrBadBuild, name, target)
			}
			if info.IsDir() {
				return fmt.Errorf("%w: %s is a symlink to a folder; copy the folder in instead", ErrBadBuild, name)
			}
		}
		if err != nil {
			return fmt.Errorf("%w: %v", ErrBadBuild, err)
		}
		switch {
		case info.IsDir():
			entries = append(entries, entry{name: name + "/"})
		case info.Mode().IsRegular():
			entries = append(entries, entry{name: name, path: p, size: info.Size()})
			total += info.Size()
			if name == "index.html" {
				hasIndex = true
			}
		default:
			return fmt.Errorf("%w: %s is not a regular file; remove it", ErrBadBuild, name)
		}
		return nil
	})
	if err != nil {
		return nil, 0, err
	}
	if len(entries) == 0 {
		return nil, 0, fmt.Errorf("%w: folder %s is empty; run your web build first", ErrBadBuild, dir)
	}
	if !hasIndex {
		return nil, 0, fmt.Errorf("%w: %s has no index.html at its root; pass the folder your build writes (often ./www or ./dist)", ErrBadBuild, dir)
	}
	sort.Slice(entries, func(i, j int) bool { return entries[i].name < entries[j].name })
	return entries, total, nil
}

// checkName refuses names that the plugin or an unzipper could misread.
func checkName(name string) error {
	bad := ""
	switch {
	case !utf8.ValidString(name):
		bad = "is not valid UTF-8"
	case strings.ContainsAny(name, "\\\x00"):
		bad = "contains a backslash or NUL"
	case strings.HasPrefix(name, "/") || strings.Contains(name, ":"):
		bad = "is absolute or contains ':'"
	}
	for _, part := range strings.Split(name, "/") {
		if part == ".." || part == "." {
			bad = "contains a '..' or '.' element"
		}
	}
	if bad != "" {
		return fmt.Errorf("%w: file name %q %s; rename it", ErrBadBuild, name, bad)
	}
	return nil
}

// job is one file compressed by a worker, in memory.
type job struct {
	e    entry
	done chan struct{}
	raw  int64
	crc  uint32
	data []byte // deflated
	js   bool   // a .js file that mentions notifyAppReady
	err  error
}

// writeZip writes the entries to w in order. Small files are compressed in
// parallel by one worker per CPU; the writer takes their results in order.
func writeZip(w io.Writer, entries []entry, total int64, progress func(done, total int64)) (*Bundle, error) {
	h := sha256.New()
	cw := &countWriter{w: io.MultiWriter(w, h)}
	zw := zip.NewWriter(cw)
	b := &Bundle{}

	budget := newBudget(inflightBudget)
	jobs := make(chan *job)
	queue := make(chan *job, 256)
	var wg sync.WaitGroup
	for range runtime.GOMAXPROCS(0) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range jobs {
				j.compress()
				close(j.done)
			}
		}()
	}
	stop := make(chan struct{})
	go func() { // dispatch in order, within the memory budget
		defer close(queue)
		defer close(jobs)
		for _, e := range entries {
			j := &job{e: e, done: make(chan struct{})}
			if e.path != "" && e.size <= parallelLimit {
				budget.acquire(e.size)
				select {
				case jobs <- j:
				case <-stop:
					return
				}
			} else {
				close(j.done) // the writer handles folders and large files
			}
			select {
			case queue <- j:
			case <-stop:
				return
			}
		}
	}()
	defer func() {
		close(stop)
		budget.close()
		for range queue { // let the dispatcher finish
		}
		wg.Wait()
	}()

	var done int64
	for j := range queue {
		<-j.done
		var err error
		switch {
		case j.e.path == "":
			_, err = zw.CreateHeader(&zip.FileHeader{Name: j.e.name, Modified: zipTime, Method: zip.Store, ExternalAttrs: dirAttrs})
		case j.e.size > parallelLimit:
			err = streamEntry(zw, j.e, &b.NotifyAppReady)
		default:
			budget.release(j.e.size)
			if j.err != nil {
				return nil, j.err
			}
			b.NotifyAppReady = b.NotifyAppReady || j.js
			var fw io.Writer
			fw, err = zw.CreateRaw(header(j.e.name, j.crc, uint64(len(j.data)), uint64(j.raw)))
			if err == nil {
				_, err = fw.Write(j.data)
			}
		}
		if err != nil {
			return nil, fmt.Errorf("zip %s: %w", j.e.name, err)
		}
		if j.e.path != "" {
			b.Files++
			done += j.e.size
			if progress != nil {
				progress(done, total)
			}
		}
	}
	if err := zw.Close(); err != nil {
		return nil, fmt.Errorf("zip: %w", err)
	}
	b.SHA256, b.Size = hex.EncodeToString(h.Sum(nil)), cw.n
	return b, nil
}

// Unix mode bits in the upper half of ExternalAttrs, as zip -X writes them.
const (
	fileAttrs = 0o100644 << 16
	dirAttrs  = 0o40755<<16 | 0x10
)

func header(name string, crc uint32, compressed, raw uint64) *zip.FileHeader {
	return &zip.FileHeader{
		Name: name, Method: zip.Deflate, Modified: zipTime,
		CRC32: crc, CompressedSize64: compressed, UncompressedSize64: raw,
		CreatorVersion: 3 << 8, ExternalAttrs: fileAttrs,
	}
}

// level picks the Deflate level: already-compressed formats only pass
// through a fast Deflate (every entry must still be Deflate for Android).
func level(name string) int {
	switch strings.ToLower(filepath.Ext(name)) {
	case ".png", ".jpg", ".jpeg", ".gif", ".webp", ".avif", ".woff", ".woff2", ".mp3", ".mp4", ".webm", ".ogg", ".zip", ".gz", ".br":
		return flate.BestSpeed
	}
	return 6 // as zip -6 and the Capgo CLI
}

var flaters = [10]sync.Pool{}

func (j *job) compress() {
	raw, err := os.ReadFile(j.e.path)
	if err != nil {
		j.err = fmt.Errorf("%w: %v", ErrBadBuild, err)
		return
	}
	j.raw, j.crc = int64(len(raw)), crc32.ChecksumIEEE(raw)
	j.js = strings.HasSuffix(j.e.name, ".js") && bytes.Contains(raw, []byte("notifyAppReady"))
	var buf bytes.Buffer
	buf.Grow(len(raw)/2 + 64)
	lv := level(j.e.name)
	fw, _ := flaters[lv].Get().(*flate.Writer)
	if fw == nil {
		fw, _ = flate.NewWriter(&buf, lv)
	} else {
		fw.Reset(&buf)
	}
	fw.Write(raw)
	fw.Close()
	flaters[lv].Put(fw)
	j.data = buf.Bytes()
}

// streamEntry deflates a large file straight into the zip.
func streamEntry(zw *zip.Writer, e entry, notify *bool) error {
	f, err := os.Open(e.path)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrBadBuild, err)
	}
	defer f.Close()
	fh := &zip.FileHeader{Name: e.name, Method: zip.Deflate, Modified: zipTime, CreatorVersion: 3 << 8, ExternalAttrs: fileAttrs}
	w, err := zw.CreateHeader(fh)
	if err != nil {
		return err
	}
	var r io.Reader = f
	if strings.HasSuffix(e.name, ".js") && !*notify {
		r = io.TeeReader(f, &scanWriter{found: notify})
	}
	_, err = io.Copy(w, r)
	return err
}

// scanWriter sets found when the bytes written to it contain notifyAppReady.
type scanWriter struct {
	found *bool
	tail  []byte
}

func (s *scanWriter) Write(p []byte) (int, error) {
	const word = "notifyAppReady"
	buf := append(s.tail, p...)
	if bytes.Contains(buf, []byte(word)) {
		*s.found = true
	}
	if len(buf) > len(word) {
		buf = buf[len(buf)-len(word):]
	}
	s.tail = append(s.tail[:0], buf...)
	return len(p), nil
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// budget bounds the bytes held by in-flight jobs.
type budget struct {
	mu     sync.Mutex
	cond   *sync.Cond
	free   int64
	closed bool
}

func newBudget(n int64) *budget {
	b := &budget{free: n}
	b.cond = sync.NewCond(&b.mu)
	return b
}

func (b *budget) acquire(n int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for b.free < n && !b.closed {
		b.cond.Wait()
	}
	b.free -= n
}

func (b *budget) release(n int64) {
	b.mu.Lock()
	b.free += n
	b.mu.Unlock()
	b.cond.Broadcast()
}

func (b *budget) close() {
	b.mu.Lock()
	b.closed = true
	b.mu.Unlock()
	b.cond.Broadcast()
}
