package publish

import (
	"archive/zip"
	"bytes"
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
	"sync/atomic"
	"syscall"
	"unicode/utf8"

	"github.com/klauspost/compress/flate"

	"github.com/cartona/deploy/internal/bufcopy"
)

// Bundle is a web build zipped the way the Capgo plugin expects it.
type Bundle struct {
	Path   string // the zip, a temporary file; Remove it when done
	SHA256 string // lowercase hex of the zip's bytes
	Size   int64
	Files  int
	// CRC32 is the zip's CRC-32 (IEEE) as 8 lowercase hex digits, the
	// checksum older Capgo plugins compare.
	CRC32 string
	// Contents are the files of the build in name order, each hashed as it
	// was zipped: what the file manifest lists.
	Contents []Content
	// NotifyAppReady reports whether some .js file calls notifyAppReady;
	// without that call the plugin rolls the bundle back.
	NotifyAppReady bool
}

// Content is one file of a build: its name in the zip, where it is on
// disk, and its size and SHA-256 (lowercase hex).
type Content struct {
	Name, Path string
	Size       int64
	SHA256     string
	// data is the content as it was zipped and hashed, kept for small
	// files so that storing them reads nothing again; nil otherwise.
	data []byte
}

// Remove deletes the bundle's temporary file.
func (b *Bundle) Remove() error { return os.Remove(b.Path) }

// ErrBadBuild is wrapped by every error about the content of a web build
// folder: missing, empty, without index.html, with unsafe names, or
// holding a private key.
var ErrBadBuild = errors.New("bad web build")

// unreadable is the error of a file or folder of a build that cannot be
// read: what is wrong with it and what to do, without the system call.
func unreadable(err error) error {
	var pe *fs.PathError
	if !errors.As(err, &pe) {
		return fmt.Errorf("%w: %v", ErrBadBuild, err)
	}
	switch {
	case errors.Is(err, fs.ErrPermission):
		return fmt.Errorf("%w: %s cannot be read (permission denied); make it readable (chmod a+r) or move it out of the build folder", ErrBadBuild, pe.Path)
	case errors.Is(err, syscall.ELOOP):
		return fmt.Errorf("%w: %s is a symbolic link that loops; remove it, or point it at a file in the build folder", ErrBadBuild, pe.Path)
	}
	return fmt.Errorf("%w: %s: %v", ErrBadBuild, pe.Path, pe.Err)
}

// Every entry has the same fixed modification time, 2000-01-01 00:00:00, as
// an MS-DOS date and time, so that the same folder always gives the same
// bytes.
const (
	zipDate = (2000-1980)<<9 | 1<<5 | 1
	zipTime = 0
)

const (
	// Files up to this size are compressed into memory; larger ones into a
	// temporary file, so memory stays bounded whatever the build holds.
	memoryLimit = 1 << 20
	// Raw bytes held in memory by in-flight jobs at most.
	inflightBudget = 16 << 20
	// Files up to keepLimit are read whole, and their bytes kept for the
	// file objects, up to keepBudget for the build.
	keepLimit  = 16 << 10
	keepBudget = 4 << 20
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
	return zipTree(dir, tmpDir, progress, nil)
}

// zipTree is Zip, calling each, if not nil, with every file's Content as
// soon as it is zipped, in order.
func zipTree(dir, tmpDir string, progress func(done, total int64), each func(Content)) (*Bundle, error) {
	entries, total, err := collect(dir)
	if err != nil {
		return nil, err
	}
	f, err := os.CreateTemp(tmpDir, "deploy-bundle-*.zip")
	if err != nil {
		return nil, fmt.Errorf("create temporary bundle: %w", err)
	}
	b, err := writeZip(f, tmpDir, entries, total, progress, each)
	if err == nil {
		err = checkZip32(b.Size, len(entries))
	}
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

// CheckBuild checks, without walking it, that dir looks like a web build:
// a folder with index.html at its root. Zip checks this first, so a wrong
// dir= (such as /tmp, with sockets and huge trees) fails at once; a caller
// that writes anything before zipping (keys, a new store) calls it first.
// Its errors wrap [ErrBadBuild].
func CheckBuild(dir string) error {
	_, err := checkBuild(dir)
	return err
}

// CheckKeysOutside refuses, with [PrivateKeyError], a key file that is
// inside the build folder dir or would be created there. The zip refuses
// any private key it finds in a build; a caller that loads or creates
// keys before zipping (key_file=) calls this first, so that such a key is
// refused before anything is written. Empty names are skipped.
func CheckKeysOutside(dir string, keyFiles ...string) error {
	root, err := checkBuild(dir)
	if err != nil {
		return err
	}
	for _, k := range keyFiles {
		if k == "" {
			continue
		}
		p, err := realPath(k)
		if err != nil {
			return err
		}
		if rel, ok := within(root, p); ok {
			return PrivateKeyError(rel)
		}
	}
	return nil
}

// within returns the slash-separated name of p inside the folder root,
// and whether p is inside it; both are real paths.
func within(root, p string) (string, bool) {
	rel, err := filepath.Rel(root, p)
	if err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) || filepath.IsAbs(rel) {
		return "", false
	}
	return filepath.ToSlash(rel), true
}

// realPath is the absolute path of name with symlinks resolved, as far as
// it exists.
func realPath(name string) (string, error) {
	p, err := filepath.Abs(name)
	if err != nil {
		return "", err
	}
	rest := ""
	for {
		if r, err := filepath.EvalSymlinks(p); err == nil {
			return filepath.Join(r, rest), nil
		}
		parent := filepath.Dir(p)
		if parent == p {
			return filepath.Join(p, rest), nil
		}
		rest, p = filepath.Join(filepath.Base(p), rest), parent
	}
}

// checkBuild is CheckBuild, returning the folder's real path.
func checkBuild(dir string) (string, error) {
	root, err := buildRoot(dir)
	if err != nil {
		return "", err
	}
	if fi, err := os.Stat(filepath.Join(root, "index.html")); err == nil && fi.Mode().IsRegular() {
		return root, nil
	}
	if isEmpty(root) {
		return "", fmt.Errorf("%w: folder %s is empty; run your web build first", ErrBadBuild, dir)
	}
	return "", fmt.Errorf("%w: %s has no index.html at its root; pass the folder your build writes (often ./www or ./dist) as dir=", ErrBadBuild, dir)
}

// isEmpty reports whether the folder dir has no entries, reading one name
// at most.
func isEmpty(dir string) bool {
	f, err := os.Open(dir)
	if err != nil {
		return false
	}
	defer f.Close()
	_, err = f.Readdirnames(1)
	return errors.Is(err, io.EOF)
}

// collect walks dir and returns its entries sorted by name, checking the
// rules of a bundle on the way; index.html is checked before the walk.
func collect(dir string) ([]entry, int64, error) {
	root, err := checkBuild(dir)
	if err != nil {
		return nil, 0, err
	}
	c := &collector{root: root}
	if err := filepath.WalkDir(root, c.visit); err != nil {
		return nil, 0, err
	}
	sort.Slice(c.entries, func(i, j int) bool { return c.entries[i].name < c.entries[j].name })
	if err := checkZip32(0, len(c.entries)); err != nil {
		return nil, 0, err
	}
	if err := checkCaseCollisions(c.entries); err != nil {
		return nil, 0, err
	}
	return c.entries, c.total, nil
}

// buildRoot returns the real path of the folder dir, refusing anything
// else.
func buildRoot(dir string) (string, error) {
	root, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	fi, err := os.Stat(root)
	if errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("%w: folder %s does not exist; run your web build (for example `ionic build`) or pass dir=<folder>", ErrBadBuild, dir)
	}
	if err != nil {
		return "", unreadable(err)
	}
	if !fi.IsDir() {
		return "", fmt.Errorf("%w: %s is not a folder; pass dir=<the folder of your web build>", ErrBadBuild, dir)
	}
	return filepath.EvalSymlinks(root)
}

// collector gathers the entries of a build folder as it is walked.
type collector struct {
	root    string // the folder, symlinks resolved
	entries []entry
	total   int64
}

// visit is the WalkDir function: it checks and records one path.
func (c *collector) visit(p string, d fs.DirEntry, err error) error {
	if err != nil {
		return unreadable(err)
	}
	if p == c.root {
		return nil
	}
	if base := d.Name(); base == ".DS_Store" || base == "__MACOSX" || base == "Thumbs.db" {
		if d.IsDir() {
			return filepath.SkipDir
		}
		return nil
	}
	rel, _ := filepath.Rel(c.root, p)
	name := filepath.ToSlash(rel)
	if err := checkName(name); err != nil {
		return err
	}
	info, err := c.stat(p, name, d)
	if err != nil {
		return err
	}
	switch {
	case info.IsDir():
		c.entries = append(c.entries, entry{name: name + "/"})
	case info.Mode().IsRegular():
		if info.Size() >= zip32Max {
			return fmt.Errorf("%w: %s is %d bytes; a file of %d bytes (2^32-1) or more needs zip64, which Android's unzip in the Capgo plugin does not read; leave the file out or split it", ErrBadBuild, name, info.Size(), int64(zip32Max))
		}
		c.entries = append(c.entries, entry{name: name, path: p, size: info.Size()})
		c.total += info.Size()
	default:
		return fmt.Errorf("%w: %s is not a regular file; remove it", ErrBadBuild, name)
	}
	return nil
}

// stat returns the info of p, following a symlink only to a file inside
// the folder.
func (c *collector) stat(p, name string, d fs.DirEntry) (fs.FileInfo, error) {
	info, err := os.Stat(p) // follows symlinks
	if d.Type()&fs.ModeSymlink != 0 {
		target, terr := filepath.EvalSymlinks(p)
		if terr != nil || err != nil {
			return nil, fmt.Errorf("%w: %s is a broken symlink; remove it or copy the file in", ErrBadBuild, name)
		}
		if _, ok := within(c.root, target); !ok {
			return nil, fmt.Errorf("%w: %s is a symlink to %s, outside the folder; copy the file in instead", ErrBadBuild, name, target)
		}
		if info.IsDir() {
			return nil, fmt.Errorf("%w: %s is a symlink to a folder; copy the folder in instead", ErrBadBuild, name)
		}
	}
	if err != nil {
		return nil, unreadable(err)
	}
	return info, nil
}

// checkCaseCollisions refuses names that differ only in case: iOS's file
// system is case-insensitive, so one would overwrite the other on devices.
func checkCaseCollisions(entries []entry) error {
	seen := map[string]string{}
	var clashes []string
	for _, e := range entries {
		name := strings.TrimSuffix(e.name, "/")
		folded := strings.ToLower(name)
		if other, ok := seen[folded]; ok {
			clashes = append(clashes, fmt.Sprintf("%q and %q", other, name))
			continue
		}
		seen[folded] = name
	}
	if len(clashes) > 0 {
		return fmt.Errorf("%w: these names differ only in case, and iOS's file system does not tell them apart: %s; rename one of each", ErrBadBuild, strings.Join(clashes, ", "))
	}
	return nil
}

// zip32Max is the first size that needs zip64: a file's size, the zip's
// size or an entry's offset at or over it, as for Go's archive/zip. The
// Capgo plugin unzips on Android with java.util.zip.ZipInputStream, which
// reads sizes from each entry's local header; archive/zip writes zip64
// sizes only in the central directory, so that reader fails on such an
// entry ("invalid entry size"). Such bundles are refused rather than
// published broken.
const zip32Max = 1<<32 - 1

// checkZip32 refuses a zip that needs zip64: size bytes or more than
// 65 534 entries.
func checkZip32(size int64, entries int) error {
	if size >= zip32Max || entries >= 1<<16-1 {
		return fmt.Errorf("%w: the zip would be %d bytes with %d entries, over 4 GiB or 65 534 entries: it needs zip64, which Android's unzip in the Capgo plugin does not read; make the build smaller", ErrBadBuild, size, entries)
	}
	return nil
}

// checkName refuses names that the plugin or an unzipper could misread.
func checkName(name string) error {
	bad := ""
	switch {
	case !utf8.ValidString(name):
		bad = "is not valid UTF-8"
	case strings.ContainsAny(name, "\\"):
		bad = "contains a backslash"
	case strings.ContainsFunc(name, func(r rune) bool { return r < 0x20 || r == 0x7f }):
		bad = "contains a newline or another control character"
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

// job is one file, Deflate-compressed by a worker into memory or, when
// large, into a temporary file.
type job struct {
	e      entry
	done   chan struct{}
	raw    int64
	crc    uint32
	sha    string // lowercase hex SHA-256 of the file's content
	kept   *atomic.Int64
	data   []byte   // the content, when kept (see keepLimit)
	mem    []byte   // compressed, for small files
	spill  *os.File // compressed, for large files
	notify bool     // a .js file that mentions notifyAppReady
	err    error
}

// inMemory reports whether the job's output is kept in memory.
func (j *job) inMemory() bool { return j.e.size <= memoryLimit }

// writeZip writes the entries to w in order. Workers, one per CPU, compress
// files in parallel; the writer takes their results in order.
func writeZip(w io.Writer, tmpDir string, entries []entry, total int64, progress func(done, total int64), each func(Content)) (*Bundle, error) {
	h, zcrc := sha256.New(), crc32.NewIEEE()
	cw := &countWriter{w: io.MultiWriter(w, h, zcrc)}
	zw := zip.NewWriter(cw)
	b := &Bundle{}
	budget := newBudget(inflightBudget)
	queue, stop := compressAll(tmpDir, entries, budget)
	defer stop()

	var done int64
	for j := range queue {
		<-j.done
		if j.e.path == "" {
			if _, err := zw.CreateHeader(j.header(zip.Store, dirAttrs)); err != nil {
				return nil, fmt.Errorf("zip %s: %w", j.e.name, err)
			}
			continue
		}
		err := j.write(zw)
		j.discard()
		if j.inMemory() {
			budget.release(j.e.size)
		}
		if err != nil {
			return nil, err
		}
		b.NotifyAppReady = b.NotifyAppReady || j.notify
		b.Files++
		c := Content{Name: j.e.name, Path: j.e.path, Size: j.raw, SHA256: j.sha, data: j.data}
		b.Contents = append(b.Contents, c)
		if each != nil {
			each(c)
		}
		done += j.e.size
		if progress != nil {
			progress(done, total)
		}
	}
	if err := zw.Close(); err != nil {
		return nil, fmt.Errorf("zip: %w", err)
	}
	b.SHA256, b.Size, b.CRC32 = hex.EncodeToString(h.Sum(nil)), cw.n, fmt.Sprintf("%08x", zcrc.Sum32())
	return b, nil
}

// compressAll starts the workers and a dispatcher that hands them the
// entries in order, within the memory budget. It returns the jobs in
// entry order, each to be waited for (done) before use, and a stop
// function that cancels what is left and waits for the workers.
func compressAll(tmpDir string, entries []entry, budget *budget) (<-chan *job, func()) {
	jobs := make(chan *job)
	queue := make(chan *job, 64)
	var wg sync.WaitGroup
	for range runtime.GOMAXPROCS(0) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range jobs {
				j.compress(tmpDir)
				close(j.done)
			}
		}()
	}
	stop := make(chan struct{})
	var kept atomic.Int64
	go func() {
		defer close(queue)
		defer close(jobs)
		for _, e := range entries {
			j := &job{e: e, done: make(chan struct{}), kept: &kept}
			if e.path == "" {
				close(j.done) // a folder: nothing to compress
			} else {
				if j.inMemory() {
					budget.acquire(e.size)
				}
				select {
				case jobs <- j:
				case <-stop:
					return
				}
			}
			select {
			case queue <- j:
			case <-stop:
				<-j.done
				j.discard()
				return
			}
		}
	}()
	return queue, func() {
		close(stop)
		budget.close()
		for j := range queue { // let the dispatcher and workers finish
			<-j.done
			j.discard()
		}
		wg.Wait()
	}
}

// Unix mode bits in the upper half of ExternalAttrs, as zip -X writes them.
const (
	fileAttrs = 0o100644 << 16
	dirAttrs  = 0o40755<<16 | 0x10
)

// header is the entry's zip header: made on Unix by zip 2.0, the fixed time,
// and the UTF-8 flag for names beyond ASCII (CreateRaw sets none of these).
func (j *job) header(method uint16, attrs uint32) *zip.FileHeader {
	fh := &zip.FileHeader{
		Name: j.e.name, Method: method, ModifiedDate: zipDate, ModifiedTime: zipTime,
		CreatorVersion: 3<<8 | 20, ReaderVersion: 20, ExternalAttrs: attrs,
	}
	for _, r := range j.e.name {
		if r >= utf8.RuneSelf {
			fh.Flags |= 0x800
			break
		}
	}
	return fh
}

// level picks the Deflate level: already-compressed formats only pass
// through a fast Deflate (every entry must still be Deflate for Android).
func level(name string) int {
	if precompressed(name) {
		return flate.BestSpeed
	}
	return 6 // as zip -6 and the Capgo CLI
}

// precompressed reports whether name is of a format that is compressed
// already, which a general compressor barely shrinks.
func precompressed(name string) bool {
	switch strings.ToLower(filepath.Ext(name)) {
	case ".png", ".jpg", ".jpeg", ".gif", ".webp", ".avif", ".woff", ".woff2", ".mp3", ".mp4", ".webm", ".ogg", ".zip", ".gz", ".br":
		return true
	}
	return false
}

var flaters [10]sync.Pool

// compress deflates the job's file, computing its CRC-32 and looking for
// notifyAppReady in .js files on the way.
func (j *job) compress(tmpDir string) {
	j.err = j.compressErr(tmpDir)
	if j.err != nil {
		j.discard()
	}
}

func (j *job) compressErr(tmpDir string) error {
	f, err := os.Open(j.e.path)
	if err != nil {
		return unreadable(err)
	}
	defer f.Close()
	var sink io.Writer
	var buf *bytes.Buffer
	if j.inMemory() {
		buf = bytes.NewBuffer(make([]byte, 0, j.e.size/2+64))
		sink = buf
	} else {
		if j.spill, err = os.CreateTemp(tmpDir, "deploy-entry-*"); err != nil {
			return err
		}
		os.Remove(j.spill.Name()) // unlinked: gone when closed, whatever happens
		sink = j.spill
	}
	lv := level(j.e.name)
	fw, _ := flaters[lv].Get().(*flate.Writer)
	if fw == nil {
		fw, _ = flate.NewWriter(sink, lv)
	} else {
		fw.Reset(sink)
	}
	defer flaters[lv].Put(fw)
	crc, sum, key := crc32.NewIEEE(), sha256.New(), &keySniffer{}
	dst := io.MultiWriter(fw, crc, sum, key)
	var scan *scanWriter
	if strings.HasSuffix(j.e.name, ".js") {
		scan = &scanWriter{}
		dst = io.MultiWriter(fw, crc, sum, key, scan)
	}
	var n int64
	if j.e.size <= keepLimit {
		n, err = j.readWhole(f, dst)
	} else {
		n, err = bufcopy.Copy(dst, f)
	}
	if err != nil {
		return unreadable(err)
	}
	if key.isKey() {
		return PrivateKeyError(j.e.name)
	}
	if err := fw.Close(); err != nil {
		return err
	}
	j.raw, j.crc, j.notify = n, crc.Sum32(), scan != nil && scan.found
	j.sha = hex.EncodeToString(sum.Sum(nil))
	if buf != nil {
		j.mem = buf.Bytes()
	}
	return nil
}

// readWhole reads a small file in one go, writes it to dst, and keeps its
// bytes while the build's keepBudget allows.
func (j *job) readWhole(f *os.File, dst io.Writer) (int64, error) {
	b := bytes.NewBuffer(make([]byte, 0, j.e.size+bytes.MinRead))
	if _, err := b.ReadFrom(f); err != nil {
		return 0, err
	}
	data := b.Bytes()
	if _, err := dst.Write(data); err != nil {
		return 0, err
	}
	if j.kept.Add(int64(len(data))) <= keepBudget {
		j.data = data
	}
	return int64(len(data)), nil
}

// write adds the compressed entry to the zip, with CRC and sizes in the
// local header (no data descriptor).
func (j *job) write(zw *zip.Writer) error {
	if j.err != nil {
		return j.err
	}
	var src io.Reader = bytes.NewReader(j.mem)
	size := int64(len(j.mem))
	if j.spill != nil {
		var err error
		if size, err = j.spill.Seek(0, io.SeekEnd); err == nil {
			_, err = j.spill.Seek(0, io.SeekStart)
		}
		if err != nil {
			return err
		}
		src = j.spill
	}
	fh := j.header(zip.Deflate, fileAttrs)
	fh.CRC32, fh.CompressedSize64, fh.UncompressedSize64 = j.crc, uint64(size), uint64(j.raw)
	fw, err := zw.CreateRaw(fh)
	if err == nil {
		_, err = io.Copy(fw, src)
	}
	if err != nil {
		return fmt.Errorf("zip %s: %w", j.e.name, err)
	}
	return nil
}

// discard frees what the job holds.
func (j *job) discard() {
	j.mem = nil
	if j.spill != nil {
		j.spill.Close()
		j.spill = nil
	}
}

// scanWriter notes whether the bytes written to it contain notifyAppReady,
// also across writes.
type scanWriter struct {
	found bool
	tail  []byte
}

func (s *scanWriter) Write(p []byte) (int, error) {
	const word = "notifyAppReady"
	if s.found {
		return len(p), nil
	}
	if bytes.Contains(p, []byte(word)) || bytes.Contains(append(s.tail, p[:min(len(p), len(word))]...), []byte(word)) {
		s.found = true
	}
	if len(p) >= len(word) {
		s.tail = append(s.tail[:0], p[len(p)-len(word):]...)
	} else {
		s.tail = append(s.tail, p...)
	}
	return len(p), nil
}

// PrivateKeyError is the refusal of a build that holds a private key at
// name: a build is public, and its files immutable once stored. It wraps
// [ErrBadBuild].
func PrivateKeyError(name string) error {
	return fmt.Errorf("%w: %s is a private key: every device, and anyone who can read the store, would get it; move it out of the web build folder (keep your signing key outside it, and pass key_file= where it is), then upload again; nothing was published", ErrBadBuild, name)
}

// keySniffer tells, from the bytes of a file as they are zipped, whether
// the file holds a PEM private key: a line in its first keyScanLimit bytes
// that starts (after spaces, tabs or a UTF-8 byte order mark) with
// "-----BEGIN" and contains "PRIVATE KEY". That covers PKCS#8 as deploy
// writes keys, the RSA, EC, OpenSSH and encrypted forms, and files that
// hold a key after something else (a certificate, openssl's "Bag
// Attributes"). Only line starts are compared, so it costs little past a
// file's first bytes and nothing past keyScanLimit.
type keySniffer struct {
	line     [maxLabelLine]byte // the start of the current line
	n        int                // bytes of line used
	skipping bool               // the current line cannot be a label: skip to its end
	seen     int                // bytes looked at
	found    bool
}

const (
	pemBegin = "-----BEGIN"
	bom      = "\xef\xbb\xbf"
	// maxLabelLine bounds the start of a line looked at; the longest PEM
	// private key label, "-----BEGIN ENCRYPTED PRIVATE KEY-----", is 37
	// bytes.
	maxLabelLine = 128
	// keyScanLimit bounds the bytes of a file looked at: PEM files are a
	// few KiB.
	keyScanLimit = 64 << 10
)

func (s *keySniffer) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 && !s.found && s.seen < keyScanLimit {
		if s.skipping {
			i := bytes.IndexByte(p, '\n')
			if i < 0 {
				s.seen += len(p)
				break
			}
			s.seen += i + 1
			p, s.skipping, s.n = p[i+1:], false, 0
			continue
		}
		c := p[0]
		p = p[1:]
		s.seen++
		switch {
		case c == '\n':
			s.endLine()
		case s.n == 0 && (c == ' ' || c == '\t' || c == '\r'):
		default:
			s.line[s.n] = c
			s.n++
			if s.n == maxLabelLine {
				s.endLine()
				s.skipping = true
			} else if !s.mayBeLabel() {
				s.skipping = true
			}
		}
	}
	return n, nil
}

// mayBeLabel reports whether the line so far can still start a label.
func (s *keySniffer) mayBeLabel() bool {
	line := s.line[:s.n]
	if len(line) < len(bom) && bytes.HasPrefix([]byte(bom), line) {
		return true
	}
	line = bytes.TrimPrefix(line, []byte(bom))
	k := min(len(line), len(pemBegin))
	return string(line[:k]) == pemBegin[:k]
}

// endLine checks the line collected, and starts the next.
func (s *keySniffer) endLine() {
	line := bytes.TrimPrefix(s.line[:s.n], []byte(bom))
	if bytes.HasPrefix(line, []byte(pemBegin)) && bytes.Contains(line, []byte("PRIVATE KEY")) {
		s.found = true
	}
	s.n = 0
}

// isKey reports whether the file holds a PEM private key; it is asked once
// the whole file is written.
func (s *keySniffer) isKey() bool {
	if !s.skipping && s.n > 0 {
		s.endLine() // a last line without a newline
	}
	return s.found
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
