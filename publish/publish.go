package publish

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"strconv"
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

// maxRetries bounds compare-and-swap and create-only retry loops.
const maxRetries = 100

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
}

// Request is one upload.
type Request struct {
	App       string
	Channel   string // "production" if empty
	Dir       string // the web build folder
	Version   string // the version devices get; the build number if empty
	Notes     string
	MinNative string
	GitCommit string
	Expires   time.Duration // DefaultExpiry if zero
	// Progress, if set, is called as the zip is made with raw bytes done and
	// in all.
	Progress func(done, total int64)
	// Stage, if set, is told each step as it starts.
	Stage func(step string)
}

func (r Request) stage(step string) {
	if r.Stage != nil {
		r.Stage(step)
	}
}

// Result is what an upload did.
type Result struct {
	App         string `json:"app"`
	Channel     string `json:"channel"`
	BuildID     string `json:"build_id"`
	Number      int64  `json:"number"`
	Version     string `json:"version"`
	SHA256      string `json:"sha256"`
	Size        int64  `json:"size"`
	Files       int    `json:"files"`
	Uploader    string `json:"uploader"`
	Bundle      string `json:"bundle"` // URL (with a CDN) or store location
	Latest      string `json:"latest"`
	Sequence    int64  `json:"sequence"`
	Unchanged   bool   `json:"unchanged"`            // identical to the channel's current build: nothing published
	Renewed     bool   `json:"renewed,omitempty"`    // the same build, its latest.json signed again with a later expiry
	Superseded  bool   `json:"superseded,omitempty"` // a newer build reached the channel first
	Invalidated bool   `json:"invalidated"`          // the CDN's copy of latest.json was purged
	// NotifyAppReady is false when no .js file calls notifyAppReady.
	NotifyAppReady bool `json:"notify_app_ready"`
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

// Upload publishes a build: it checks the grant, zips the folder, then
// writes the bundle, the build record and the channel's latest.json in that
// order, and finally purges latest.json from the CDN. A crash at any step
// leaves latest.json pointing at a complete build; concurrent uploads each
// get their own build number and the channel ends at the newest; uploading
// the build the channel already has writes nothing, unless its latest.json
// is past half its life, which is then signed again (Renewed).
func (p *Publisher) Upload(ctx context.Context, req Request) (*Result, error) {
	if req.Channel == "" {
		req.Channel = "production"
	}
	if err := manifest.CheckName("app", req.App); err != nil {
		return nil, err
	}
	if err := manifest.CheckName("channel", req.Channel); err != nil {
		return nil, err
	}
	if req.Expires != 0 && req.Expires < time.Hour {
		return nil, fmt.Errorf("expires %s is too short: devices would refuse the channel soon after publishing; use 1h or more (default %s)", req.Expires, DefaultExpiry)
	}
	stage := req.stage
	now := p.now()
	pub := manifest.Public(p.Key)

	stage("checking the grant")
	acl, _, err := ReadACL(ctx, p.Store, p.Trust)
	if err != nil {
		return nil, err
	}
	uploader := acl.Uploader(pub, req.App)
	if uploader == "" {
		e := &NotGrantedError{App: req.App, Key: manifest.FormatPublicKey(pub)}
		for _, u := range acl.Users {
			for _, k := range u.Keys {
				if k == e.Key {
					e.User = u.Name
				}
			}
		}
		return nil, e
	}

	stage("zipping " + req.Dir)
	b, err := Zip(req.Dir, p.TempDir, req.Progress)
	if err != nil {
		return nil, err
	}
	defer b.Remove()

	res := &Result{App: req.App, Channel: req.Channel, SHA256: b.SHA256, Size: b.Size, Files: b.Files, Uploader: uploader,
		NotifyAppReady: b.NotifyAppReady, Bundle: p.location(manifest.BundleKey(req.App, b.SHA256)),
		Latest: p.location(manifest.LatestKey(req.App, req.Channel))}

	expires := req.Expires
	if expires == 0 {
		expires = DefaultExpiry
	}
	cur, _, err := p.readLatest(ctx, req.App, req.Channel, acl)
	if err != nil {
		return nil, err
	}
	if cur != nil && cur.verified && cur.Build.SHA256 == b.SHA256 && cur.Build.MinNative == req.MinNative &&
		(req.Version == "" || req.Version == cur.Build.Version) {
		res.BuildID, res.Number, res.Version, res.Sequence = cur.Build.ID, cur.Build.Number, cur.Build.Version, cur.Sequence
		if cur.Expires.After(now.Add(expires / 2)) {
			res.Unchanged = true
			return res, nil
		}
		// The same build, but its latest.json is past half its life: sign it
		// again so devices never see it expire.
		stage("renewing " + req.Channel)
		res.Renewed = true
		return p.finish(ctx, acl, cur.Build, req, now, expires, res)
	}
	if req.Version != "" {
		if err := p.checkVersionFree(ctx, acl, req.App, req.Version, b.SHA256); err != nil {
			return nil, err
		}
	}

	stage("uploading the bundle")
	if err := p.putBundle(ctx, req.App, b); err != nil {
		return nil, err
	}

	stage("writing the build record")
	build := manifest.Build{App: req.App, BuildRef: manifest.BuildRef{
		Version: req.Version, Bundle: manifest.BundleKey(req.App, b.SHA256), SHA256: b.SHA256, Size: b.Size, MinNative: req.MinNative,
	}, Uploader: uploader, Created: now, Notes: req.Notes, GitCommit: req.GitCommit}
	if err := p.putBuild(ctx, &build, req.Version == ""); err != nil {
		return nil, err
	}
	res.BuildID, res.Number, res.Version = build.ID, build.Number, build.Version

	stage("updating " + req.Channel)
	return p.finish(ctx, acl, build.BuildRef, req, now, expires, res)
}

// finish points the channel at build and purges its latest.json from the
// CDN.
func (p *Publisher) finish(ctx context.Context, acl *manifest.ACL, build manifest.BuildRef, req Request, now time.Time, expires time.Duration, res *Result) (*Result, error) {
	seq, superseded, err := p.swapLatest(ctx, acl, build, req, now, expires)
	if err != nil {
		return nil, err
	}
	res.Sequence, res.Superseded = seq, superseded
	if superseded || p.Invalidator == nil {
		return res, nil
	}
	req.stage("invalidating the CDN cache")
	if err := p.Invalidator.Invalidate(ctx, []string{p.cdnPath(manifest.LatestKey(req.App, req.Channel))}); err != nil {
		return res, fmt.Errorf("published build %d, but the CDN invalidation failed (devices see it within 60 s anyway): %w", build.Number, err)
	}
	res.Invalidated = true
	return res, nil
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

// checkVersionFree refuses a version string that a channel of app already
// serves with other content: the plugin tells bundles apart by version, so
// devices on that version would never get the new one.
func (p *Publisher) checkVersionFree(ctx context.Context, acl *manifest.ACL, app, version, sha string) error {
	infos, err := p.Store.List(ctx, manifest.ChannelsPrefix(app))
	if err != nil {
		return err
	}
	for _, in := range infos {
		channel, ok := strings.CutSuffix(strings.TrimPrefix(in.Key, manifest.ChannelsPrefix(app)), "/latest.json")
		if !ok || strings.Contains(channel, "/") {
			continue
		}
		cur, _, err := p.readLatest(ctx, app, channel, acl)
		if err != nil {
			return err
		}
		if cur != nil && cur.verified && cur.Build.Version == version && cur.Build.SHA256 != sha {
			return fmt.Errorf("version %s is already build %d on channel %s, with other content; devices tell bundles apart by version, so give this one a new version (or leave version out to use the build number)", version, cur.Build.Number, channel)
		}
	}
	return nil
}

// putBundle uploads the zip once: bundles are content-addressed, so an
// object of the same size at its key is the same bundle. Another object
// there (a broken copy) is replaced; one that another upload is still
// writing is waited for.
func (p *Publisher) putBundle(ctx context.Context, app string, b *Bundle) error {
	key := manifest.BundleKey(app, b.SHA256)
	for attempt := range 10 {
		opt := store.PutOptions{Size: b.Size, ContentType: "application/zip", CacheControl: immutableCache}
		info, err := p.Store.Stat(ctx, key)
		switch {
		case err == nil && info.Size == b.Size:
			return nil
		case err == nil:
			opt.IfMatch = info.ETag
		case errors.Is(err, fs.ErrNotExist):
			opt.CreateOnly = true
		default:
			return err
		}
		f, err := os.Open(b.Path)
		if err != nil {
			return err
		}
		_, err = p.Store.Put(ctx, key, f, opt)
		f.Close()
		if !errors.Is(err, fs.ErrExist) && !errors.Is(err, store.ErrConflict) {
			return err
		}
		select { // written meanwhile by another upload: look again
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Duration(attempt+1) * 100 * time.Millisecond):
		}
	}
	return fmt.Errorf("%s kept changing while it was uploaded; try again", p.Store.Location(key))
}

// putBuild writes the build record under the next free number, taking the
// next one if a concurrent upload took it first.
func (p *Publisher) putBuild(ctx context.Context, build *manifest.Build, defaultVersion bool) error {
	n, err := p.lastNumber(ctx, build.App)
	if err != nil {
		return err
	}
	for attempt := 0; attempt < maxRetries; attempt++ {
		n++
		build.Number, build.ID = n, manifest.BuildID(build.App, n)
		if defaultVersion {
			build.Version = strconv.FormatInt(n, 10)
		}
		env, err := manifest.Sign(manifest.TypeBuild, build, p.Key)
		if err != nil {
			return err
		}
		_, err = p.Store.Put(ctx, manifest.BuildKey(build.App, n), bytes.NewReader(env.Marshal()), store.PutOptions{CreateOnly: true, ContentType: "application/json", CacheControl: immutableCache})
		if errors.Is(err, fs.ErrExist) {
			continue
		}
		return err
	}
	return fmt.Errorf("could not find a free build number for %s after %d tries", build.App, maxRetries)
}

// lastNumber is the highest build number of app in the store, 0 if none.
func (p *Publisher) lastNumber(ctx context.Context, app string) (int64, error) {
	infos, err := p.Store.List(ctx, manifest.BuildsPrefix(app))
	if err != nil {
		return 0, err
	}
	var last int64
	for _, in := range infos {
		name := strings.TrimSuffix(path.Base(in.Key), ".json")
		if n, err := strconv.ParseInt(name, 10, 64); err == nil && n > last {
			last = n
		}
	}
	return last, nil
}

// current is a channel's latest.json as read before a swap.
type current struct {
	manifest.Latest
	parsed   bool // its payload could be read
	verified bool // signed by a key granted for the app
}

// nextSequence is the sequence of the latest.json that replaces cur. After
// an unreadable one, whose sequence is lost, it is the current Unix time:
// above what devices saw, which grew by one per publish.
func (cur *current) nextSequence(now time.Time) int64 {
	switch {
	case cur == nil:
		return 1
	case !cur.parsed:
		return max(now.Unix(), 1)
	}
	return cur.Sequence + 1
}

// readLatest reads and verifies a channel's latest.json. It returns nil if
// there is none. An unverifiable one is returned unverified, so that its
// sequence can still be passed: devices never saw it as valid, but the new
// sequence must be above any number it claims.
func (p *Publisher) readLatest(ctx context.Context, app, channel string, acl *manifest.ACL) (*current, string, error) {
	key := manifest.LatestKey(app, channel)
	data, info, err := store.ReadSmall(ctx, p.Store, key, manifest.MaxLatestSize)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, "", nil
	}
	if errors.Is(err, store.ErrTooLarge) || manifest.RuleOf(err) == manifest.RuleTooLarge { // no device accepts it: replace it
		info, err = p.Store.Stat(ctx, key)
		if err != nil {
			return nil, "", err
		}
		return &current{}, info.ETag, nil
	}
	if err != nil {
		return nil, "", err
	}
	// Checked at the zero time, so an expired pointer still counts as the
	// channel's current build.
	if l, err := acl.VerifyLatest(data, manifest.Expect{App: app, Channel: channel}); err == nil {
		return &current{Latest: *l, parsed: true, verified: true}, info.ETag, nil
	}
	cur := &current{}
	if env, err := manifest.ParseEnvelope(data, manifest.TypeLatest, manifest.MaxLatestSize); err == nil {
		cur.parsed = json.Unmarshal(env.Payload, &cur.Latest) == nil
	}
	return cur, info.ETag, nil
}

// swapLatest points the channel at build with compare-and-swap, re-reading
// and retrying when another upload changed it meanwhile. If the channel
// already points at a newer build, it is left alone (superseded).
func (p *Publisher) swapLatest(ctx context.Context, acl *manifest.ACL, build manifest.BuildRef, req Request, now time.Time, expires time.Duration) (int64, bool, error) {
	key := manifest.LatestKey(req.App, req.Channel)
	for attempt := 0; attempt < maxRetries; attempt++ {
		cur, etag, err := p.readLatest(ctx, req.App, req.Channel, acl)
		if err != nil {
			return 0, false, err
		}
		l := manifest.Latest{App: req.App, Channel: req.Channel, Sequence: cur.nextSequence(now), Issued: now, Expires: now.Add(expires), Build: build}
		opt := store.PutOptions{CreateOnly: true, ContentType: "application/json", CacheControl: shortCache}
		if cur != nil {
			if cur.verified && cur.Build.Number > build.Number {
				return cur.Sequence, true, nil
			}
			opt.CreateOnly, opt.IfMatch = false, etag
		}
		env, err := manifest.Sign(manifest.TypeLatest, l, p.Key)
		if err != nil {
			return 0, false, err
		}
		_, err = p.Store.Put(ctx, key, bytes.NewReader(env.Marshal()), opt)
		if errors.Is(err, store.ErrConflict) || errors.Is(err, fs.ErrExist) {
			continue
		}
		if err != nil {
			return 0, false, err
		}
		return l.Sequence, false, nil
	}
	return 0, false, fmt.Errorf("%s kept changing under %d attempts to update it; try again", key, maxRetries)
}
