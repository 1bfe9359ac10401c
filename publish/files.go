package publish

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"math/bits"
	"os"
	"runtime"
	"strings"
	"sync"

	"github.com/andybalholm/brotli"

	"github.com/cartona/deploy/internal/bufcopy"
	"github.com/cartona/deploy/manifest"
	"github.com/cartona/deploy/store"
)

// brotliQuality trades upload time for device bytes. On an Ionic-shaped
// build, quality 1 compresses about 6 times faster than quality 6 for
// objects about 11 % larger; a one-line change sends a few small files,
// so the first upload's time matters more.
const brotliQuality = 1

// brotliMinSize is the smallest file given a Brotli form (unless its name
// ends in .br). Below it a file saves a device a few hundred bytes at
// most, while compressing it costs the upload more than zipping it: on an
// Ionic-shaped build of 1,500 small files, this takes the upload from
// 1.06 to 0.92 times the time of zip -6 (on a RAM-backed file system, so
// that the disk does not blur it). The Capgo CLI draws the line at
// 8 KiB.
const brotliMinSize = 4 << 10

// putConcurrency is how many file objects are written at once.
const putConcurrency = 16

// Files is what storing a build file by file did.
type Files struct {
	SHA256 string // of the file manifest's bytes
	Size   int64  // of the file manifest
	// New counts the file objects this upload wrote, NewBytes their bytes
	// and the manifest's when it was new; the rest were in the store.
	New      int
	NewBytes int64
	data     []byte // the file manifest
}

// fileObject is one content of a build (files with the same bytes share
// it), and what the store holds of it.
type fileObject struct {
	Content
	names   []string // the files with this content
	needBr  bool     // some name ends in .br, so a Brotli form must exist
	rawSize int64    // size of the stored raw object, -1 if none
	broken  bool     // a raw object of another size is stored: replace it
	brSize  int64    // size of the stored Brotli object, -1 if none
	written int64    // bytes this upload wrote for it
	wrote   int      // objects this upload wrote for it
}

// putFiles stores each file of the build once by content at
// [manifest.FileKey] (its Brotli form where that is smaller, from
// brotliMinSize on), skipping those the store already has, then the file
// manifest at [manifest.FileManifestKey]. Objects are written create-only,
// concurrently, as immutable. The manifest written is checked as a device
// would check it. The lease must name the file objects; the manifest is
// added to it before it is written. progress, if not nil, is told how many
// of the build's files are stored so far. What pre staged is kept where
// the store has not changed since (see [prestage]).
func (p *Publisher) putFiles(ctx context.Context, app string, contents []Content, l *lease, pre *prestage, progress func(done, total int64)) (*Files, error) {
	pre.wait()
	objs, err := p.fileObjects(ctx, app, contents)
	if err != nil {
		return nil, err
	}
	batch := pre.adopt(objs)
	if batch == nil {
		batch = store.NewBatch(p.Store)
	}
	defer batch.Close()
	var mu sync.Mutex // progress is called by one goroutine at a time
	done := int64(0)
	put := func(o *fileObject) error {
		err := p.putObject(ctx, batch, app, o)
		if progress != nil {
			mu.Lock()
			done += int64(len(o.names))
			progress(done, int64(len(contents)))
			mu.Unlock()
		}
		return err
	}
	if err := forEach(ctx, objs, put); err != nil {
		return nil, err
	}
	// The manifest and its stored form are made while the objects are synced.
	var data, stored []byte
	var gzipped bool
	made := make(chan error, 1)
	go func() {
		var err error
		data, err = fileManifest(app, contents, objs)
		if err == nil {
			stored, gzipped, err = storedFileManifest(data)
		}
		made <- err
	}()
	err = batch.Commit(ctx)
	if merr := <-made; err == nil {
		err = merr
	}
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(data)
	f := &Files{SHA256: hex.EncodeToString(sum[:]), Size: int64(len(data)), data: data}
	for _, o := range objs {
		f.New += o.wrote
		f.NewBytes += o.written
	}
	if err := l.add(ctx, app, manifest.FileManifestKey(app, f.SHA256)); err != nil {
		return nil, err
	}
	meta := store.PutOptions{ContentType: "application/json"}
	if gzipped {
		meta.ContentEncoding = "gzip"
	}
	wrote, err := putImmutable(ctx, p.Store, manifest.FileManifestKey(app, f.SHA256), bytes.NewReader(stored), int64(len(stored)), meta, false)
	if err != nil {
		return nil, err
	}
	f.NewBytes += wrote
	return f, nil
}

// fileObjects groups contents by SHA-256 and notes what the store already
// holds of each, from one listing of the app's files.
func (p *Publisher) fileObjects(ctx context.Context, app string, contents []Content) (map[string]*fileObject, error) {
	stored, err := p.storedFiles(ctx, app)
	if err != nil {
		return nil, err
	}
	objs := map[string]*fileObject{}
	for _, c := range contents {
		if o := objs[c.SHA256]; o != nil {
			o.names = append(o.names, c.Name)
			o.needBr = o.needBr || strings.HasSuffix(c.Name, ".br")
		} else {
			objs[c.SHA256] = newFileObject(app, c, stored)
		}
	}
	return objs, nil
}

// storedFiles returns the size of each file object the store holds of app,
// by key.
func (p *Publisher) storedFiles(ctx context.Context, app string) (map[string]int64, error) {
	infos, err := p.Store.List(ctx, manifest.FileKey(app, "", ""))
	if err != nil {
		return nil, err
	}
	stored := make(map[string]int64, len(infos))
	for _, in := range infos {
		stored[in.Key] = in.Size
	}
	return stored, nil
}

// newFileObject is c's content, named c.Name only, and what stored (see
// storedFiles) holds of it.
func newFileObject(app string, c Content, stored map[string]int64) *fileObject {
	size := func(key string) int64 {
		if n, ok := stored[key]; ok {
			return n
		}
		return -1
	}
	o := &fileObject{Content: c, names: []string{c.Name}, needBr: strings.HasSuffix(c.Name, ".br"),
		rawSize: size(manifest.FileKey(app, c.SHA256, "")), brSize: size(manifest.FileKey(app, c.SHA256, manifest.EncodingBrotli))}
	if o.rawSize != c.Size { // absent, or not these bytes: write it
		o.broken, o.rawSize = o.rawSize >= 0, -1
	}
	return o
}

// encoding is the encoding of name's entry: Brotli when the name requires
// it or the stored Brotli form is the smaller.
func (o *fileObject) encoding(name string) string {
	if strings.HasSuffix(name, ".br") || (o.brSize >= 0 && o.brSize < o.Size) {
		return manifest.EncodingBrotli
	}
	return ""
}

// putObject writes what the store lacks of o: its Brotli form when a name
// requires it, or when there is no stored copy yet, o is not small, and it
// comes out smaller; then the file as is if some name still needs it.
func (p *Publisher) putObject(ctx context.Context, w putter, app string, o *fileObject) error {
	if o.brSize < 0 && (o.needBr || o.rawSize < 0 && o.Size >= brotliMinSize && !precompressed(o.Name)) {
		if err := p.putBrotli(ctx, w, app, o); err != nil {
			return err
		}
	}
	for _, name := range o.names {
		if o.encoding(name) == "" && o.rawSize < 0 {
			return p.putRaw(ctx, w, app, o)
		}
	}
	return nil
}

// putBrotli compresses o and writes its Brotli form when that is smaller
// or a name requires it.
func (p *Publisher) putBrotli(ctx context.Context, w putter, app string, o *fileObject) error {
	br, err := p.compressFile(o.Content)
	if err != nil {
		return err
	}
	defer br.close()
	if !o.needBr && br.size >= o.Size {
		return nil
	}
	r, err := br.reader()
	if err != nil {
		return err
	}
	n, err := putImmutable(ctx, w, manifest.FileKey(app, o.SHA256, manifest.EncodingBrotli), r, br.size, octetStream, o.brSize >= 0)
	if err != nil {
		return err
	}
	o.brSize, o.written, o.wrote = br.size, o.written+n, o.wrote+min(int(n), 1)
	return nil
}

// putRaw writes the file as is: the bytes kept from the zip's read, or
// the file read again, checking that its bytes are still those hashed when
// it was zipped: a reader that finds other bytes fails at its end, so the
// write fails, and a copy written without reading to the end is deleted.
func (p *Publisher) putRaw(ctx context.Context, w putter, app string, o *fileObject) error {
	key := manifest.FileKey(app, o.SHA256, "")
	if o.data != nil {
		n, err := putImmutable(ctx, w, key, bytes.NewReader(o.data), o.Size, octetStream, o.broken)
		if err != nil {
			return err
		}
		o.rawSize, o.written, o.wrote = o.Size, o.written+n, o.wrote+min(int(n), 1)
		return nil
	}
	f, err := os.Open(o.Path)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrBadBuild, err)
	}
	defer f.Close()
	r := &checkedReader{r: f, h: sha256.New(), want: o.SHA256, name: o.Name}
	n, err := putImmutable(ctx, w, key, r, o.Size, octetStream, o.broken)
	if err != nil {
		return err
	}
	if n > 0 && r.finish() != nil {
		p.Store.Delete(ctx, key)
		return changedError(o.Name)
	}
	o.rawSize, o.written, o.wrote = o.Size, o.written+n, o.wrote+min(int(n), 1)
	return nil
}

func changedError(name string) error {
	return fmt.Errorf("%w: %s changed while it was uploaded; let the web build finish, then upload again", ErrBadBuild, name)
}

// putter is where objects are written: a store, or a batch of one.
type putter interface {
	Put(ctx context.Context, key string, r io.Reader, opt store.PutOptions) (store.Info, error)
}

// checkedReader reads a file whose SHA-256 must be want, and fails at its
// end if it is not.
type checkedReader struct {
	r    io.Reader
	h    hash.Hash
	want string
	name string
	err  error // the result at the end, once reached
	done bool
}

func (c *checkedReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.h.Write(p[:n])
	if err == io.EOF {
		c.done = true
		if hex.EncodeToString(c.h.Sum(nil)) != c.want {
			c.err = changedError(c.name)
			return n, c.err
		}
	}
	return n, err
}

// finish reads what a writer left unread and reports whether the bytes
// were the ones wanted.
func (c *checkedReader) finish() error {
	if !c.done {
		if _, err := io.Copy(io.Discard, c); err != nil {
			return err
		}
	}
	return c.err
}

// putImmutable writes size bytes from r at key, create-only unless replace
// (a broken copy is there), as immutable with meta's content type and
// encoding, and returns the bytes written: 0 when the object was there
// already.
func putImmutable(ctx context.Context, w putter, key string, r io.Reader, size int64, meta store.PutOptions, replace bool) (int64, error) {
	meta.CreateOnly, meta.Size, meta.CacheControl = !replace, size, immutableCache
	_, err := w.Put(ctx, key, r, meta)
	if errors.Is(err, fs.ErrExist) {
		return 0, nil // content-addressed: another upload wrote the same bytes
	}
	if err != nil {
		return 0, err
	}
	return size, nil
}

// octetStream is the metadata of a file object.
var octetStream = store.PutOptions{ContentType: "application/octet-stream"}

// compressSlots bounds the Brotli encoders at work, each holding a window
// of up to 4 MiB.
var compressSlots = make(chan struct{}, runtime.GOMAXPROCS(0))

// brotliWriters holds idle Brotli encoders by window size: most builds
// are many small files, and a new encoder's buffers cost more to allocate
// than its file to compress.
var brotliWriters [23]sync.Pool

// blob is bytes to store: in memory, or in an unlinked temporary file when
// large.
type blob struct {
	mem  *bytes.Buffer
	file *os.File
	size int64
}

func (b *blob) reader() (io.Reader, error) {
	if b.file == nil {
		return bytes.NewReader(b.mem.Bytes()), nil
	}
	_, err := b.file.Seek(0, io.SeekStart)
	return b.file, err
}

func (b *blob) close() {
	if b.file != nil {
		b.file.Close()
	}
}

// compressFile returns the Brotli form of c's content: the bytes kept from
// the zip's read, or the file read again and checked against the hash
// taken as it was zipped.
func (p *Publisher) compressFile(c Content) (*blob, error) {
	var src io.Reader = bytes.NewReader(c.data)
	h := sha256.New()
	if c.data == nil {
		in, err := os.Open(c.Path)
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrBadBuild, err)
		}
		defer in.Close()
		src = io.TeeReader(in, h)
	}
	var err error
	b := &blob{mem: &bytes.Buffer{}}
	var sink io.Writer = b.mem
	if c.Size > memoryLimit {
		if b.file, err = os.CreateTemp(p.TempDir, "deploy-file-*.br"); err != nil {
			return nil, err
		}
		os.Remove(b.file.Name()) // unlinked: gone when closed
		sink = b.file
	}
	compressSlots <- struct{}{}
	defer func() { <-compressSlots }()
	// A window just large enough for the file keeps the encoder small.
	lgwin := min(max(bits.Len64(uint64(c.Size)), 10), 22)
	cw := &countWriter{w: sink}
	w, _ := brotliWriters[lgwin].Get().(*brotli.Writer)
	if w == nil {
		w = brotli.NewWriterOptions(cw, brotli.WriterOptions{Quality: brotliQuality, LGWin: lgwin})
	} else {
		w.Reset(cw)
	}
	defer brotliWriters[lgwin].Put(w)
	_, err = bufcopy.Copy(w, src)
	if err == nil {
		err = w.Close()
	}
	if err == nil && c.data == nil && hex.EncodeToString(h.Sum(nil)) != c.SHA256 {
		err = changedError(c.Name)
	}
	if err != nil {
		b.close()
		return nil, err
	}
	b.size = cw.n
	return b, nil
}

// fileManifest is the bytes of the build's file manifest, checked as a
// device checks it.
func fileManifest(app string, contents []Content, objs map[string]*fileObject) ([]byte, error) {
	m := manifest.FileManifest{App: app, Files: make([]manifest.FileEntry, len(contents))}
	for i, c := range contents {
		m.Files[i] = manifest.FileEntry{Name: c.Name, SHA256: c.SHA256, Size: c.Size, Encoding: objs[c.SHA256].encoding(c.Name)}
	}
	data, err := json.Marshal(m)
	if err != nil {
		return nil, err
	}
	if len(data) > manifest.MaxFileManifestSize {
		return nil, fmt.Errorf("%w: the file manifest of its %d files would be %d bytes, over the %d devices read; make the build smaller", ErrBadBuild, len(contents), len(data), manifest.MaxFileManifestSize)
	}
	sum := sha256.Sum256(data)
	ref := manifest.BuildRef{FilesSHA256: hex.EncodeToString(sum[:]), FilesSize: int64(len(data))}
	if _, err := manifest.CheckFileManifest(ref, app, data); err != nil {
		return nil, fmt.Errorf("the file manifest would not verify (%w); nothing was published", err)
	}
	return data, nil
}

// storedFileManifest returns the stored form of a file manifest's bytes,
// and whether it is gzip, once it decodes to those bytes: they passed
// CheckFileManifest, so the stored form passes ReadFileManifest.
func storedFileManifest(data []byte) ([]byte, bool, error) {
	stored, gzipped := manifest.EncodeStoredFileManifest(data)
	got, err := manifest.DecodeStoredFileManifest(stored, int64(len(data)))
	if err == nil && !bytes.Equal(got, data) {
		err = errors.New("other bytes")
	}
	if err != nil {
		return nil, false, fmt.Errorf("the stored form of the file manifest would not decode to its bytes (%w); nothing was published", err)
	}
	return stored, gzipped, nil
}

// forEach runs fn on every value of m, putConcurrency at a time, and
// returns the first error, after which no new call starts.
func forEach[K comparable, V any](ctx context.Context, m map[K]V, fn func(V) error) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	work := make(chan V)
	var wg sync.WaitGroup
	for range putConcurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for v := range work {
				if err := fn(v); err != nil {
					cancel(err)
				}
			}
		}()
	}
	func() {
		defer close(work)
		for _, v := range m {
			select {
			case work <- v:
			case <-ctx.Done():
				return
			}
		}
	}()
	wg.Wait()
	if err := context.Cause(ctx); err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return ctx.Err()
}
