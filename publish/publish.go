package publish

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"strings"
	"time"

	"github.com/cartona/deploy/manifest"
	"github.com/cartona/deploy/store"
)

// Cache-Control of the objects a publish writes.
const (
	immutableCache = "public, max-age=31536000, immutable"
	shortCache     = "public, max-age=60"
)

// DefaultExpiry is how long a latest.json stays valid when Request.Expires
// is zero. Devices refuse an expired manifest, so a channel must be
// published again before then.
const DefaultExpiry = 365 * 24 * time.Hour

// Invalidator purges paths from a CDN's cache (publish/cloudfront).
type Invalidator interface {
	Invalidate(ctx context.Context, paths []string) error
}

// Publisher uploads builds to a store.
type Publisher struct {
	Store store.Store
	Key   ed25519.PrivateKey // the uploader's signing key
	Trust manifest.Trust     // pinned root keys that the ACL must verify against
	// CDN is the public base URL that serves the store's keys, if any.
	CDN string
	// Invalidator, if set, purges a channel's latest.json after it changes.
	Invalidator Invalidator
	// TempDir holds the zip while it is made; the system default if empty.
	TempDir string
	// Now returns the current time; time.Now if nil.
	Now func() time.Time
	// Waiting, if set, is told why a command waits, once per wait: for a
	// running prune that is about to delete objects it needs.
	Waiting func(why string)
}

// Request is one upload. [Request.Check] lists the limits of its fields.
type Request struct {
	App       string
	Channel   string // manifest.DefaultChannel if empty
	Dir       string // the web build folder
	Version   string // the version devices get; DefaultVersion if empty
	Notes     string
	MinNative string // lowest native version the build runs on
	MaxNative string // highest native version the build runs on
	// DryRun checks and zips, then says what would be published (the
	// build number and version, the sequence), writing nothing.
	DryRun bool
	// Rollout, from 1 to 99, offers the build to that percentage of the
	// channel's devices as a staged rollout ([Rollout]); 0 or 100: to all.
	Rollout   int64
	GitCommit string
	Expires   time.Duration // DefaultExpiry if zero
	// Progress, if set, is told how far each long step is, from one
	// goroutine at a time.
	Progress func(Progress)
	// Stage, if set, is told each step as it starts.
	Stage func(step string)
}

func (r Request) stage(step string) {
	if r.Stage != nil {
		r.Stage(step)
	}
}

// Progress is how far a long step of an upload is: Done of Total bytes,
// or files when Files is set.
type Progress struct {
	Step        string // "zipping", "uploading the bundle" or "uploading the files"
	Done, Total int64
	Files       bool
}

// progress returns a function that reports step's progress, or nil.
func (r Request) progress(step string, files bool) func(done, total int64) {
	if r.Progress == nil {
		return nil
	}
	return func(done, total int64) { r.Progress(Progress{Step: step, Done: done, Total: total, Files: files}) }
}

// Outcome is what an upload did to its channel.
type Outcome string

// The outcomes of an upload.
const (
	// Published: the channel now points at the build.
	Published Outcome = "published"
	// Unchanged: the channel already had this build; nothing was written.
	Unchanged Outcome = "unchanged"
	// Renewed: the channel already had this build, and its latest.json,
	// past half its life, was signed again with a later expiry.
	Renewed Outcome = "renewed"
	// Superseded: the build was recorded, but a newer build reached the
	// channel first, which was left alone.
	Superseded Outcome = "superseded"
)

// Result is what an upload did.
type Result struct {
	App      string  `json:"app"`
	Channel  string  `json:"channel"`
	Outcome  Outcome `json:"outcome"`
	BuildID  string  `json:"build_id"`
	Number   int64   `json:"number"`
	Version  string  `json:"version"`
	SHA256   string  `json:"sha256"`
	Size     int64   `json:"size"`
	Files    int     `json:"files"`
	Uploader string  `json:"uploader"`
	Bundle   string  `json:"bundle"` // URL (with a CDN) or store location
	Latest   string  `json:"latest"`
	Sequence int64   `json:"sequence"`
	// DryRun reports that nothing was written: the result says what would be.
	DryRun bool `json:"dry_run,omitempty"`
	// Rollout is the percentage of devices offered the build, when the
	// upload started a staged rollout.
	Rollout int64 `json:"rollout,omitempty"`
	// NewFiles counts the file objects this upload wrote; the others were
	// in the store already. NewFileBytes is their bytes and the file
	// manifest's when new, NewBytes those and the bundle's when new.
	// Replaced says why the channel's latest.json did not verify, when
	// the upload replaced such a pointer: what it held (a candidate,
	// fallbacks, self_assign) could not be trusted and was not carried
	// over, and the channel's history starts over.
	Replaced     string `json:"replaced_unverified,omitempty"`
	NewFiles     int    `json:"new_files"`
	NewFileBytes int64  `json:"new_file_bytes"`
	NewBytes     int64  `json:"new_bytes"`
	// Invalidated reports that the CDN's copy of latest.json was purged.
	Invalidated bool `json:"invalidated"`
	// NotifyAppReady is false when no .js file calls notifyAppReady.
	NotifyAppReady bool `json:"notify_app_ready"`
	// WideFallbacks says which devices outside the build's native range
	// get a fallback with no bound on their side ([WideFallbacks]).
	WideFallbacks []string `json:"wide_fallbacks,omitempty"`
}

// MarshalJSON adds to the fields the booleans that scripts read before
// Outcome existed: unchanged, renewed and superseded.
func (r Result) MarshalJSON() ([]byte, error) {
	type plain Result
	return json.Marshal(struct {
		plain
		Unchanged  bool `json:"unchanged"`
		Renewed    bool `json:"renewed,omitempty"`
		Superseded bool `json:"superseded,omitempty"`
	}{plain(r), r.Outcome == Unchanged, r.Outcome == Renewed, r.Outcome == Superseded})
}

// NotGrantedError reports an uploader without can_upload for the app.
type NotGrantedError struct {
	App string
	Key string // the uploader's public key, text form
	// User is the ACL user holding Key, if any.
	User string
}

func (e *NotGrantedError) Error() string {
	if e.User != "" {
		return fmt.Sprintf("user %q may not upload to app %q; an administrator runs:\n  deploy grant username=%s app=%s can_upload=1", e.User, e.App, e.User, e.App)
	}
	return fmt.Sprintf("your key %s is not in the ACL, so it may not upload to app %q; an administrator runs:\n  deploy grant username=<you> app=%s can_upload=1 key=%s", e.Key, e.App, e.App, e.Key)
}

// Upload publishes a build: grant, zip, bundle, build record, then the
// channel's pointer (through [Publisher.updatePointer]), and finally a CDN
// purge of latest.json. Every field is checked before anything is
// written, so a refused upload writes nothing. A crash at any step leaves
// latest.json pointing at a complete build; concurrent uploads each get
// their own build number and the channel ends at the newest; uploading the
// build the channel already has writes nothing ([Unchanged]), unless its
// latest.json is past half its life, which is then signed again
// ([Renewed]).
func (p *Publisher) Upload(ctx context.Context, req Request) (*Result, error) {
	if req.Channel == "" {
		req.Channel = manifest.DefaultChannel
	}
	if err := req.Check(); err != nil {
		return nil, err
	}
	req.stage("checking the grant")
	acl, uploader, err := p.grant(ctx, req.App)
	if err != nil {
		return nil, err
	}
	if err := p.checkSizes(req, uploader); err != nil {
		return nil, err
	}
	req.stage("zipping " + req.Dir)
	pre := p.prestage(ctx, req)
	defer pre.close()
	var each func(Content)
	if pre != nil {
		each = pre.add
	}
	b, err := zipTree(req.Dir, p.TempDir, req.progress("zipping", false), each)
	if err != nil {
		return nil, err
	}
	defer b.Remove()
	res := &Result{App: req.App, Channel: req.Channel, DryRun: req.DryRun, SHA256: b.SHA256, Size: b.Size, Files: b.Files, Uploader: uploader,
		NotifyAppReady: b.NotifyAppReady, Bundle: p.location(manifest.BundleKey(req.App, b.SHA256)),
		Latest: p.location(manifest.LatestKey(req.App, req.Channel))}
	l := p.newLease(req.App)
	defer l.release(ctx)
	build, err := p.record(ctx, acl, req, b, uploader, l, pre, res)
	if err != nil {
		return nil, err
	}
	res.BuildID, res.Number, res.Version = build.ID, build.Number, build.Version
	req.stage("updating " + req.Channel)
	return p.point(ctx, acl, req, build, res)
}

// grant reads the ACL and returns the uploader's name, refusing a key
// without can_upload for app.
func (p *Publisher) grant(ctx context.Context, app string) (*manifest.ACL, string, error) {
	acl, _, err := ReadACL(ctx, p.Store, p.Trust)
	if err != nil {
		return nil, "", err
	}
	pub := manifest.Public(p.Key)
	if uploader := acl.Uploader(pub, app); uploader != "" {
		return acl, uploader, nil
	}
	e := &NotGrantedError{App: app, Key: manifest.FormatPublicKey(pub)}
	for _, u := range acl.Users {
		for _, k := range u.Keys {
			if k == e.Key {
				e.User = u.Name
			}
		}
	}
	return nil, "", e
}

// record returns the build the channel should point at: its current one
// (or its candidate) when it has the same content, else a new build
// (bundle, then build record; in a dry run, the build that would be
// recorded, with nothing written). It refuses early a channel whose
// sequence cannot grow.
func (p *Publisher) record(ctx context.Context, acl *manifest.ACL, req Request, b *Bundle, uploader string, l *lease, pre *prestage, res *Result) (manifest.BuildRef, error) {
	ref, cur, err := p.reuse(ctx, acl, req, b)
	if err != nil || ref != nil {
		return deref(ref), err
	}
	if cur.exists && !cur.verified {
		res.Replaced = cur.problem.Error()
	}
	if req.Version != "" {
		if err := p.checkVersionFree(ctx, acl, req.App, req.Version, b.SHA256); err != nil {
			return manifest.BuildRef{}, err
		}
	}
	build := manifest.Build{App: req.App, BuildRef: manifest.BuildRef{
		Version: req.Version, Bundle: manifest.BundleKey(req.App, b.SHA256), SHA256: b.SHA256, Size: b.Size,
		MinNative: req.MinNative, MaxNative: req.MaxNative, CRC32: b.CRC32,
	}, Uploader: uploader, Created: p.now(), Notes: req.Notes, GitCommit: req.GitCommit}
	if req.DryRun {
		n, err := p.lastNumber(ctx, req.App)
		build.Number, build.ID = n+1, manifest.BuildID(req.App, n+1)
		if build.Version == "" {
			build.Version = DefaultVersion(n + 1)
		}
		return build.BuildRef, err
	}
	// The version is claimed before anything else is written, so an upload
	// refused for its version writes nothing.
	if req.Version != "" {
		req.stage("claiming version " + req.Version)
		if err := p.claimVersion(ctx, req.App, req.Version, b.SHA256); err != nil {
			return manifest.BuildRef{}, err
		}
	}
	files, err := p.putContent(ctx, req, b, l, pre, res)
	if err != nil {
		return manifest.BuildRef{}, err
	}
	build.FilesSHA256, build.FilesSize = files.SHA256, files.Size
	wrote, err := p.putPatches(ctx, acl, req.App, req.Channel, cur.pointer(), files, l)
	if err != nil {
		return manifest.BuildRef{}, err
	}
	res.NewBytes += wrote
	req.stage("writing the build record")
	if err := p.putBuild(ctx, acl, &build, req.Version == "", l); err != nil {
		return manifest.BuildRef{}, err
	}
	return build.BuildRef, nil
}

func deref(ref *manifest.BuildRef) manifest.BuildRef {
	if ref == nil {
		return manifest.BuildRef{}
	}
	return *ref
}

// reuse checks the channel before anything is written: its sequence can
// grow, it was not deleted, it has a stable build for a staged rollout. It
// returns the channel's stable build or candidate when that has the
// upload's content, else nil, and the channel's pointer as read.
func (p *Publisher) reuse(ctx context.Context, acl *manifest.ACL, req Request, b *Bundle) (*manifest.BuildRef, *current, error) {
	cur, err := p.readCurrent(ctx, acl, req.App, req.Channel)
	if err != nil {
		return nil, nil, err
	}
	if _, err := cur.nextSequence(req.App, req.Channel, p.now()); err != nil {
		return nil, nil, err
	}
	if !cur.exists {
		if err := p.checkNotDeleted(ctx, req.App, req.Channel); err != nil {
			return nil, nil, err
		}
	}
	if staged(req) && !cur.verified {
		return nil, nil, noChannel("roll out against: a first build goes to every device, so leave rollout out")
	}
	offered := []manifest.BuildRef{cur.Build}
	if cur.Candidate != nil {
		offered = append(offered, cur.Candidate.Build)
	}
	for _, ref := range offered {
		if cur.verified && ref.SHA256 == b.SHA256 && ref.MinNative == req.MinNative && ref.MaxNative == req.MaxNative && (req.Version == "" || req.Version == ref.Version) {
			return &ref, cur, nil
		}
	}
	return nil, cur, nil
}

// putContent writes the bundle and each file of the build that the store
// lacks, then its file manifest, under the upload's lease, and counts in
// res what was new.
func (p *Publisher) putContent(ctx context.Context, req Request, b *Bundle, l *lease, pre *prestage, res *Result) (*Files, error) {
	keys := []string{manifest.BundleKey(req.App, b.SHA256)}
	for _, c := range b.Contents {
		keys = append(keys, manifest.FileKey(req.App, c.SHA256, ""), manifest.FileKey(req.App, c.SHA256, manifest.EncodingBrotli))
	}
	if err := l.add(ctx, req.App, keys...); err != nil {
		return nil, err
	}
	req.stage("uploading the bundle")
	wrote, err := p.putBundle(ctx, req.App, b, req.progress("uploading the bundle", false))
	if err != nil {
		return nil, err
	}
	req.stage("uploading the files")
	files, err := p.putFiles(ctx, req.App, b.Contents, l, pre, req.progress("uploading the files", true))
	if err != nil {
		return nil, err
	}
	res.NewFiles, res.NewFileBytes, res.NewBytes = files.New, files.NewBytes, files.NewBytes+wrote
	return files, nil
}

// point moves the channel to build with [pointTo], then purges its
// latest.json from the CDN.
func (p *Publisher) point(ctx context.Context, acl *manifest.ACL, req Request, build manifest.BuildRef, res *Result) (*Result, error) {
	expires := req.Expires
	if expires == 0 {
		expires = DefaultExpiry
	}
	now := p.now()
	edit := pointTo(build, now, expires, &res.Outcome)
	if staged(req) {
		edit, res.Rollout = stageTo(build, req.Rollout, &res.Outcome), req.Rollout
	}
	edit = Noted(req.Notes, now.Add(expires), edit)
	var l *manifest.Latest
	var err error
	if req.DryRun {
		l, _, err = p.draft(ctx, acl, req.App, req.Channel, edit, true)
	} else {
		l, _, err = p.updatePointer(ctx, req.App, req.Channel, edit, true)
	}
	if err != nil {
		return nil, err
	}
	if l != nil {
		res.Sequence = l.Sequence
	}
	if res.Outcome == Published {
		res.WideFallbacks = WideFallbacks(l)
	}
	if req.DryRun || res.Outcome == Unchanged || res.Outcome == Superseded {
		return res, nil
	}
	req.stage("invalidating the CDN cache")
	res.Invalidated, err = p.purge(ctx, req.App, req.Channel)
	return res, err
}

// staged reports whether the upload is a staged rollout.
func staged(req Request) bool { return req.Rollout > 0 && req.Rollout < 100 }

// stageTo is the edit of an upload with a staged rollout: build becomes
// the channel's candidate for percent of its devices ([Rollout]).
func stageTo(build manifest.BuildRef, percent int64, out *Outcome) Edit {
	return func(cur *manifest.Latest) (*manifest.Latest, error) {
		*out = Published
		if cur != nil && (cur.Build.ID == build.ID || cur.Candidate != nil && cur.Candidate.Build.ID == build.ID && cur.Candidate.Percent == percent) {
			*out = Unchanged
			return nil, nil
		}
		return Rollout(build, percent)(cur)
	}
}

// pointTo is the upload's edit: point the channel at build, valid for
// expires from now. A channel that already has build is left alone
// ([Unchanged]) unless its latest.json is past half its life ([Renewed]);
// one that has a newer build is left alone ([Superseded]). The outcome is
// reported through out.
func pointTo(build manifest.BuildRef, now time.Time, expires time.Duration, out *Outcome) Edit {
	return func(cur *manifest.Latest) (*manifest.Latest, error) {
		*out = Published
		switch {
		case cur == nil: // a channel's first pointer: no earlier build to fall back on
			return &manifest.Latest{Build: build}, nil
		case cur.Build.ID == build.ID && cur.Build.SHA256 == build.SHA256:
			if cur.Expires.After(now.Add(expires / 2)) {
				*out = Unchanged
				return nil, nil
			}
			*out = Renewed // the same pointer, candidate and all, signed again
			return cur, nil
		case cur.Build.Number > build.Number:
			*out = Superseded
			return nil, nil
		}
		setStable(cur, build)
		return cur, nil
	}
}

func (p *Publisher) now() time.Time {
	if p.Now != nil {
		return p.Now().UTC().Truncate(time.Second)
	}
	return time.Now().UTC().Truncate(time.Second)
}

// location is the public URL of key with a CDN, else its store location.
func (p *Publisher) location(key string) string {
	if p.CDN != "" {
		return strings.TrimRight(p.CDN, "/") + "/" + key
	}
	return p.Store.Location(key)
}

// cdnPath is the path of key as the CDN serves it, for invalidation.
func (p *Publisher) cdnPath(key string) string {
	base := "/"
	if i := strings.Index(p.CDN, "://"); i >= 0 {
		if j := strings.Index(p.CDN[i+3:], "/"); j >= 0 {
			base = p.CDN[i+3+j:]
		}
	}
	return path.Join("/", base, key)
}

// putBundle uploads the zip once and returns the bytes written: bundles
// are content-addressed, so an object of the same size at its key is the
// same bundle. Another object there (a broken copy) is replaced; one that
// another upload is still writing is waited for. progress, if not nil, is
// told the bytes read for the store so far.
func (p *Publisher) putBundle(ctx context.Context, app string, b *Bundle, progress func(done, total int64)) (int64, error) {
	key := manifest.BundleKey(app, b.SHA256)
	return retry(ctx, p.Store.Location(key), func() (int64, error) {
		opt := store.PutOptions{Size: b.Size, ContentType: "application/zip", CacheControl: immutableCache}
		info, err := p.Store.Stat(ctx, key)
		switch {
		case err == nil && info.Size == b.Size:
			return 0, nil
		case err == nil:
			opt.IfMatch = info.ETag
		case errors.Is(err, fs.ErrNotExist):
			opt.CreateOnly = true
		default:
			return 0, err
		}
		f, err := os.Open(b.Path)
		if err != nil {
			return 0, err
		}
		defer f.Close()
		var r io.Reader = f
		if progress != nil {
			r = &progressReader{r: f, total: b.Size, report: progress}
		}
		if _, err = p.Store.Put(ctx, key, r, opt); err != nil {
			return 0, err
		}
		return b.Size, nil
	})
}

// putBuild writes the build record under the next free number, taking the
// next one if a concurrent upload took it first (its record, or the claim
// of its default version). Each record is checked
// against acl, as the tracker and `deploy list builds` will check it,
// and named in the upload's lease, before it is written.
func (p *Publisher) putBuild(ctx context.Context, acl *manifest.ACL, build *manifest.Build, defaultVersion bool, l *lease) error {
	n, err := p.lastNumber(ctx, build.App)
	if err != nil {
		return err
	}
	_, err = retry(ctx, "the build numbers of "+build.App, func() (struct{}, error) {
		if n >= manifest.MaxSequence {
			return struct{}{}, fmt.Errorf("app %s is at build number %d, the most the format allows; nothing was published. Publish it under a new app name", build.App, n)
		}
		n++
		build.Number, build.ID = n, manifest.BuildID(build.App, n)
		if defaultVersion {
			build.Version = DefaultVersion(n)
			// Claimed like a given version. Another content's claim means
			// another upload holds number n (or held it and died): take the
			// next one.
			var taken *VersionTakenError
			if err := p.claimVersion(ctx, build.App, build.Version, build.SHA256); errors.As(err, &taken) {
				return struct{}{}, fmt.Errorf("build number %d: %w", n, fs.ErrExist)
			} else if err != nil {
				return struct{}{}, err
			}
		}
		env, err := manifest.Sign(manifest.TypeBuild, build, p.Key)
		if err != nil {
			return struct{}{}, err
		}
		if _, err := manifest.VerifyBuild(acl, env.Marshal(), build.App); err != nil {
			return struct{}{}, fmt.Errorf("the build record would not verify (%w); the channel is unchanged", err)
		}
		key := manifest.BuildKey(build.App, n)
		if err := l.add(ctx, build.App, key); err != nil { // a prune spares the record until the pointer names it
			return struct{}{}, err
		}
		_, err = p.Store.Put(ctx, key, bytes.NewReader(env.Marshal()), store.PutOptions{CreateOnly: true, ContentType: "application/json", CacheControl: immutableCache})
		return struct{}{}, err
	})
	return err
}

// lastNumber is the highest build number of app in the store, 0 if none.
func (p *Publisher) lastNumber(ctx context.Context, app string) (int64, error) {
	infos, err := p.Store.List(ctx, manifest.BuildsPrefix(app))
	if err != nil {
		return 0, err
	}
	var last int64
	for _, in := range infos {
		if n, ok := manifest.ParseBuildKey(app, in.Key); ok && n > last {
			last = n
		}
	}
	return last, nil
}

// progressReader reports the bytes read through it, at most every 64 KiB
// and at the end.
type progressReader struct {
	r        io.Reader
	done     int64
	reported int64
	total    int64
	report   func(done, total int64)
}

func (p *progressReader) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	p.done += int64(n)
	if p.done-p.reported >= 64<<10 || p.done == p.total {
		p.reported = p.done
		p.report(p.done, p.total)
	}
	return n, err
}
