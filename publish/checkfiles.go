package publish

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"sync"

	"github.com/andybalholm/brotli"

	"github.com/cartona/deploy/manifest"
	"github.com/cartona/deploy/store"
)

// fileReaders is how many file objects [CheckFiles] reads at once, as
// many as an upload writes.
const fileReaders = 16

// FilesChecked is what [CheckFiles] verified.
type FilesChecked struct {
	Manifests int // file manifests, one per distinct manifest of the builds
	Files     int // their entries, each checked against its object
	Objects   int // distinct file objects read
}

// FileError is a file manifest, or a file object it names, that fails
// verification. It names the build, the file (none for the manifest
// itself) and the store key, and wraps the [*manifest.Error] with the rule
// broken: files_mismatch (other bytes than signed, missing, or a Brotli
// form that does not decode) or malformed (a manifest that breaks the
// format).
type FileError struct {
	Build manifest.BuildRef
	File  string // the file's name in the build; "" for the manifest
	Key   string // the object's store key
	Err   error
}

func (e *FileError) Error() string {
	if e.File == "" {
		return fmt.Sprintf("build %d: file manifest %s: %v", e.Build.Number, e.Key, e.Err)
	}
	return fmt.Sprintf("build %d: file %s (%s): %v", e.Build.Number, e.File, e.Key, e.Err)
}

func (e *FileError) Unwrap() error { return e.Err }

// CheckFiles checks the files of app's builds refs as a device that
// downloads files instead of the zip would: each build's file manifest
// against the digest its verified reference signs
// ([manifest.CheckFileManifest]), then every file object the manifest
// names, its content's size and SHA-256 ([manifest.VerifyFile]) after
// decoding the Brotli form where the entry's encoding says so. A build
// without a file manifest (files_sha256) is passed over. Manifests and
// objects that several builds share are read once; objects are read
// [fileReaders] at a time.
//
// A failure is a [*FileError]: the first entry in the builds' order, and
// each manifest's, whose check fails. Any other error is the store's.
func CheckFiles(ctx context.Context, st store.Store, app string, refs []manifest.BuildRef) (FilesChecked, error) {
	var (
		done FilesChecked
		jobs []fileJob
	)
	manifests, objects := map[string]bool{}, map[string]bool{}
	for _, ref := range refs {
		if ref.FilesSHA256 == "" || manifests[ref.FilesSHA256] {
			continue
		}
		manifests[ref.FilesSHA256] = true
		m, err := readFileManifest(ctx, st, app, ref)
		if err != nil {
			return done, err
		}
		done.Manifests++
		done.Files += len(m.Files)
		for _, f := range m.Files {
			key := manifest.FileKey(app, f.SHA256, f.Encoding)
			if !objects[key] {
				objects[key] = true
				jobs = append(jobs, fileJob{ref: ref, entry: f, key: key})
			}
		}
	}
	done.Objects = len(jobs)
	return done, checkObjects(ctx, st, jobs)
}

// readFileManifest reads ref's file manifest and checks it against ref.
func readFileManifest(ctx context.Context, st store.Store, app string, ref manifest.BuildRef) (*manifest.FileManifest, error) {
	key := manifest.FileManifestKey(app, ref.FilesSHA256)
	fail := func(err error) error { return &FileError{Build: ref, Key: key, Err: err} }
	data, _, err := store.ReadSmall(ctx, st, key, manifest.MaxFileManifestSize)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil, fail(&manifest.Error{Rule: manifest.RuleFilesMismatch, Detail: "the file manifest is missing"})
	case errors.Is(err, store.ErrTooLarge):
		return nil, fail(&manifest.Error{Rule: manifest.RuleFilesMismatch, Detail: fmt.Sprintf("the file manifest is over %d bytes", manifest.MaxFileManifestSize)})
	case err != nil:
		return nil, err
	}
	m, _, err := manifest.ReadFileManifest(ref, app, data)
	if err != nil {
		return nil, fail(err)
	}
	return m, nil
}

// fileJob is one file object to check, as the entry of ref's manifest
// that first names it.
type fileJob struct {
	ref   manifest.BuildRef
	entry manifest.FileEntry
	key   string
}

// checkObjects checks the objects of jobs, fileReaders at a time, and
// returns the failure of the first job, in order, that fails. After a
// failure no new job starts; those started before it finish, so no
// earlier failure is missed.
func checkObjects(ctx context.Context, st store.Store, jobs []fileJob) error {
	var (
		wg     sync.WaitGroup
		mu     sync.Mutex
		failed = len(jobs) // index of the first failure so far
		first  error
	)
	next := make(chan int)
	for range min(fileReaders, len(jobs)) {
		wg.Go(func() {
			var br *brotli.Reader // reused: a new one allocates its buffers
			for i := range next {
				err := checkObject(ctx, st, jobs[i], &br)
				mu.Lock()
				if err != nil && i < failed {
					failed, first = i, err
				}
				mu.Unlock()
			}
		})
	}
	for i := range jobs {
		mu.Lock()
		stop := failed < len(jobs)
		mu.Unlock()
		if stop || ctx.Err() != nil {
			break
		}
		next <- i
	}
	close(next)
	wg.Wait()
	if first == nil {
		return ctx.Err()
	}
	return first
}

// checkObject reads one file object, decodes its Brotli form if the entry
// says so (with *br, made on first use), and checks it against the entry.
func checkObject(ctx context.Context, st store.Store, job fileJob, br **brotli.Reader) error {
	fail := func(err error) error { return &FileError{Build: job.ref, File: job.entry.Name, Key: job.key, Err: err} }
	rc, _, err := st.Get(ctx, job.key)
	if errors.Is(err, fs.ErrNotExist) {
		return fail(&manifest.Error{Rule: manifest.RuleFilesMismatch, Detail: "the file object is missing"})
	}
	if err != nil {
		return err
	}
	defer rc.Close()
	src := &readErr{r: rc}
	var r io.Reader = src
	if job.entry.Encoding == manifest.EncodingBrotli {
		if *br == nil {
			*br = brotli.NewReader(src)
		} else if err := (*br).Reset(src); err != nil {
			return err
		}
		r = *br
	}
	err = manifest.VerifyFile(job.entry, r)
	switch {
	case err == nil:
		return nil
	case manifest.RuleOf(err) != "":
		return fail(err)
	case src.err != nil: // the store failed mid-read
		return src.err
	}
	// Not the store: the Brotli decoder refused the bytes.
	return fail(&manifest.Error{Rule: manifest.RuleFilesMismatch, Detail: fmt.Sprintf("its Brotli form does not decode (%v)", errors.Unwrap(err))})
}

// readErr remembers the error, other than io.EOF, of the reader it wraps.
type readErr struct {
	r   io.Reader
	err error
}

func (e *readErr) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	if err != nil && err != io.EOF {
		e.err = err
	}
	return n, err
}
