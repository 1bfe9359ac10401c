package publish_test

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cartona/deploy/internal/s3test"
	"github.com/cartona/deploy/manifest"
	"github.com/cartona/deploy/publish"
	"github.com/cartona/deploy/store"
	"github.com/cartona/deploy/store/file"
	"github.com/cartona/deploy/store/s3"
)

type fixture struct {
	store store.Store
	root  ed25519.PrivateKey
	trust manifest.Trust
	user  ed25519.PrivateKey
}

func newFixture(t *testing.T, store store.Store) *fixture {
	t.Helper()
	dir := t.TempDir()
	root, err := manifest.GenerateKey(filepath.Join(dir, "root.key"))
	if err != nil {
		t.Fatal(err)
	}
	user, err := manifest.GenerateKey(filepath.Join(dir, "user.key"))
	if err != nil {
		t.Fatal(err)
	}
	users := []manifest.User{{Name: "ahmed", Keys: []string{manifest.FormatPublicKey(manifest.Public(user))}, Grants: map[string]manifest.Grant{"retailer": {CanUpload: true}}}}
	if _, err := publish.InitACL(context.Background(), store, root, users); err != nil {
		t.Fatal(err)
	}
	return &fixture{store: store, root: root, user: user, trust: manifest.Trust{Roots: []ed25519.PublicKey{manifest.Public(root)}}}
}

func fileStore(t *testing.T) store.Store {
	s, err := file.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// eachStore runs test against a local folder and a real S3 server.
func eachStore(t *testing.T, test func(t *testing.T, store func(t *testing.T) store.Store)) {
	t.Run("file", func(t *testing.T) { test(t, fileStore) })
	t.Run("s3", func(t *testing.T) {
		srv := s3test.Start(t)
		n := 0
		test(t, func(t *testing.T) store.Store {
			n++
			u, err := url.Parse(srv.URL(fmt.Sprintf("t%d", n)))
			if err != nil {
				t.Fatal(err)
			}
			srv.Setenv(t)
			s, err := s3.Open(context.Background(), u)
			if err != nil {
				t.Fatal(err)
			}
			return s
		})
	})
}

func (f *fixture) publisher() *publish.Publisher {
	return &publish.Publisher{Store: f.store, Key: f.user, Trust: f.trust}
}

// verifyChannel checks latest.json as a device would, and the bundle it names.
func (f *fixture) verifyChannel(t *testing.T, app, channel string) *manifest.Latest {
	t.Helper()
	ctx := context.Background()
	read := func(key string) []byte {
		rc, _, err := f.store.Get(ctx, key)
		if err != nil {
			t.Fatal(err)
		}
		defer rc.Close()
		b, _ := io.ReadAll(rc)
		return b
	}
	l, _, err := f.trust.VerifyLatest(read(manifest.ACLKey), read(manifest.LatestKey(app, channel)), manifest.Expect{App: app, Channel: channel, Now: time.Now()})
	if err != nil {
		t.Fatalf("latest.json does not verify: %v", err)
	}
	rc, _, err := f.store.Get(ctx, l.Build.Bundle)
	if err != nil {
		t.Fatalf("latest.json names a missing bundle: %v", err)
	}
	defer rc.Close()
	if err := manifest.VerifyBundle(l.Build, rc); err != nil {
		t.Fatal(err)
	}
	return l
}

func TestUploadPublishesAndIsIdempotent(t *testing.T) {
	eachStore(t, testUploadPublishes)
}

func testUploadPublishes(t *testing.T, store func(t *testing.T) store.Store) {
	f := newFixture(t, store(t))
	www := writeTree(t, map[string]string{"index.html": "<html>", "main.js": "notifyAppReady()"})
	ctx := context.Background()
	var stages []string
	res, err := f.publisher().Upload(ctx, publish.Request{App: "retailer", Dir: www, Notes: "first", Stage: func(s string) { stages = append(stages, s) }})
	if err != nil {
		t.Fatal(err)
	}
	if res.Number != 1 || res.Version != "0.0.0-build.1" || res.BuildID != "retailer-1" || res.Outcome != publish.Published || res.Sequence != 1 || res.Uploader != "ahmed" {
		t.Fatalf("first upload = %+v", res)
	}
	l := f.verifyChannel(t, "retailer", "production")
	if l.Build.SHA256 != res.SHA256 || l.Build.Number != 1 {
		t.Fatalf("latest = %+v, want build 1 with sha %s", l.Build, res.SHA256)
	}
	if want := "checking the grant"; stages[0] != want {
		t.Fatalf("first stage %q, want %q (the grant is checked before anything is uploaded)", stages[0], want)
	}

	again, err := f.publisher().Upload(ctx, publish.Request{App: "retailer", Dir: www})
	if err != nil {
		t.Fatal(err)
	}
	if again.Outcome != publish.Unchanged || again.Number != 1 {
		t.Fatalf("second upload of the same folder = %+v, want unchanged build 1", again)
	}
	builds, _ := f.store.List(ctx, manifest.BuildsPrefix("retailer"))
	if len(builds) != 1 {
		t.Fatalf("%d build records after an identical upload, want 1", len(builds))
	}

	os.WriteFile(filepath.Join(www, "main.js"), []byte("notifyAppReady(); v2"), 0o644)
	third, err := f.publisher().Upload(ctx, publish.Request{App: "retailer", Dir: www, Version: "2.0.0", MinNative: "1.2.0"})
	if err != nil {
		t.Fatal(err)
	}
	l = f.verifyChannel(t, "retailer", "production")
	if third.Number != 2 || l.Build.Version != "2.0.0" || l.Sequence != 2 || l.Build.MinNative != "1.2.0" {
		t.Fatalf("third upload = %+v, latest = %+v", third, l)
	}
}

func TestUploadRefusesWithoutGrant(t *testing.T) {
	f := newFixture(t, fileStore(t))
	stranger, _ := manifest.GenerateKey(filepath.Join(t.TempDir(), "b.key"))
	p := &publish.Publisher{Store: f.store, Key: stranger, Trust: f.trust}
	_, err := p.Upload(context.Background(), publish.Request{App: "retailer", Dir: writeTree(t, map[string]string{"index.html": "x"})})
	var ng *publish.NotGrantedError
	if !errors.As(err, &ng) || !strings.Contains(err.Error(), "deploy grant username=<you> app=retailer can_upload=1 key=ed25519:") {
		t.Fatalf("err = %v, want NotGrantedError with the grant command", err)
	}
	// Granted for retailer only: refused for another app.
	_, err = f.publisher().Upload(context.Background(), publish.Request{App: "shop", Dir: writeTree(t, map[string]string{"index.html": "x"})})
	if !errors.As(err, &ng) || !strings.Contains(err.Error(), "deploy grant username=ahmed app=shop can_upload=1") {
		t.Fatalf("err = %v, want NotGrantedError naming ahmed", err)
	}
	infos, _ := f.store.List(context.Background(), "apps/")
	if len(infos) != 0 {
		t.Fatalf("a refused upload wrote %v", infos)
	}
}

func TestUploadRefusesUntrustedACL(t *testing.T) {
	f := newFixture(t, fileStore(t))
	other, _ := manifest.GenerateKey(filepath.Join(t.TempDir(), "other.key"))
	p := f.publisher()
	p.Trust = manifest.Trust{Roots: []ed25519.PublicKey{manifest.Public(other)}}
	_, err := p.Upload(context.Background(), publish.Request{App: "retailer", Dir: writeTree(t, map[string]string{"index.html": "x"})})
	if manifest.RuleOf(err) != manifest.RuleACLUntrusted {
		t.Fatalf("err = %v, want acl_untrusted", err)
	}
}

func TestConcurrentUploadsLoseNothing(t *testing.T) {
	eachStore(t, testConcurrentUploads)
}

func testConcurrentUploads(t *testing.T, store func(t *testing.T) store.Store) {
	f := newFixture(t, store(t))
	const n = 10
	var wg sync.WaitGroup
	results := make([]*publish.Result, n)
	errs := make([]error, n)
	for i := range n {
		www := writeTree(t, map[string]string{"index.html": fmt.Sprintf("<html>%d", i)})
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i], errs[i] = f.publisher().Upload(context.Background(), publish.Request{App: "retailer", Dir: www})
		}()
	}
	wg.Wait()
	seen := map[int64]bool{}
	for i := range n {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
		if seen[results[i].Number] {
			t.Fatalf("build number %d given twice", results[i].Number)
		}
		seen[results[i].Number] = true
	}
	builds, _ := f.store.List(context.Background(), manifest.BuildsPrefix("retailer"))
	if len(builds) != n {
		t.Fatalf("%d build records, want %d", len(builds), n)
	}
	if l := f.verifyChannel(t, "retailer", "production"); l.Build.Number != n {
		t.Fatalf("latest points at build %d, want the newest, %d", l.Build.Number, n)
	}
	published := 0
	for _, r := range results {
		if r.Outcome == publish.Published {
			published++
		}
	}
	f.verifyHistory(t, "production", published) // one chain, one entry per change
	if l := f.verifyChannel(t, "retailer", "production"); l.Sequence != int64(published) {
		t.Fatalf("sequence %d after %d changes", l.Sequence, published)
	}
}

// failingStore fails the Nth write, simulating a crash at that step.
type failingStore struct {
	store.Store
	mu     sync.Mutex
	writes int
	failAt int
}

func (s *failingStore) Put(ctx context.Context, key string, r io.Reader, opt store.PutOptions) (store.Info, error) {
	s.mu.Lock()
	s.writes++
	fail := s.writes == s.failAt
	s.mu.Unlock()
	if fail {
		// Half a write: the reader is consumed partly, then the process dies.
		io.CopyN(io.Discard, r, 10)
		return store.Info{}, errors.New("killed")
	}
	return s.Store.Put(ctx, key, r, opt)
}

func TestUploadKilledAtAnyStepLeavesAValidChannel(t *testing.T) {
	eachStore(t, testUploadKilled)
}

func testUploadKilled(t *testing.T, store func(t *testing.T) store.Store) {
	for failAt := 1; failAt <= 8; failAt++ { // lease, bundle, file, lease, file manifest, build record, history, latest.json
		t.Run(fmt.Sprint(failAt), func(t *testing.T) {
			f := newFixture(t, store(t))
			if _, err := f.publisher().Upload(context.Background(), publish.Request{App: "retailer", Dir: writeTree(t, map[string]string{"index.html": "v1"})}); err != nil {
				t.Fatal(err)
			}
			fs := &failingStore{Store: f.store, failAt: failAt}
			p := f.publisher()
			p.Store = fs
			_, err := p.Upload(context.Background(), publish.Request{App: "retailer", Dir: writeTree(t, map[string]string{"index.html": "v2"})})
			if err == nil {
				t.Fatal("upload succeeded through a killed write")
			}
			if l := f.verifyChannel(t, "retailer", "production"); l.Build.Number != 1 {
				t.Fatalf("after a kill at write %d latest points at build %d, want 1", failAt, l.Build.Number)
			}
			// The next upload completes and moves the channel on.
			res, err := f.publisher().Upload(context.Background(), publish.Request{App: "retailer", Dir: writeTree(t, map[string]string{"index.html": "v2"})})
			if err != nil {
				t.Fatal(err)
			}
			if l := f.verifyChannel(t, "retailer", "production"); l.Build.Number != res.Number || l.Build.SHA256 != res.SHA256 {
				t.Fatalf("retry left latest at %+v, want build %d", l.Build, res.Number)
			}
		})
	}
}

type recordingInvalidator struct{ paths []string }

func (r *recordingInvalidator) Invalidate(ctx context.Context, paths []string) error {
	r.paths = append(r.paths, paths...)
	return nil
}

func TestUploadInvalidatesExactlyLatest(t *testing.T) {
	f := newFixture(t, fileStore(t))
	inv := &recordingInvalidator{}
	p := f.publisher()
	p.CDN, p.Invalidator = "https://cdn.example.com/live", inv
	res, err := p.Upload(context.Background(), publish.Request{App: "retailer", Channel: "beta", Dir: writeTree(t, map[string]string{"index.html": "x"})})
	if err != nil {
		t.Fatal(err)
	}
	if want := "/live/apps/retailer/channels/beta/latest.json"; len(inv.paths) != 1 || inv.paths[0] != want {
		t.Fatalf("invalidated %v, want [%s]", inv.paths, want)
	}
	if want := "https://cdn.example.com/live/apps/retailer/bundles/" + res.SHA256 + ".zip"; res.Bundle != want || !res.Invalidated {
		t.Fatalf("bundle URL %s, want %s", res.Bundle, want)
	}
}

func TestUploadRenewsAnAgingLatest(t *testing.T) {
	f := newFixture(t, fileStore(t))
	www := writeTree(t, map[string]string{"index.html": "x"})
	t0 := time.Now().Add(-9 * 24 * time.Hour)
	at := func(d time.Duration) *publish.Publisher {
		p := f.publisher()
		p.Now = func() time.Time { return t0.Add(d) }
		return p
	}
	req := publish.Request{App: "retailer", Dir: www, Expires: 10 * 24 * time.Hour}
	if _, err := at(0).Upload(context.Background(), req); err != nil {
		t.Fatal(err)
	}
	res, err := at(2*24*time.Hour).Upload(context.Background(), req)
	if err != nil || res.Outcome != publish.Unchanged {
		t.Fatalf("upload of the same build early in its life = %+v, %v; want unchanged", res, err)
	}
	res, err = at(6*24*time.Hour).Upload(context.Background(), req)
	if err != nil || res.Outcome != publish.Renewed || res.Number != 1 || res.Sequence != 2 {
		t.Fatalf("upload of the same build past half its life = %+v, %v; want build 1 renewed at sequence 2", res, err)
	}
	l := f.verifyChannel(t, "retailer", "production")
	if want := t0.Add(16 * 24 * time.Hour).UTC().Truncate(time.Second); !l.Expires.Equal(want) {
		t.Fatalf("renewed latest.json expires %v, want %v", l.Expires, want)
	}
	builds, _ := f.store.List(context.Background(), manifest.BuildsPrefix("retailer"))
	if len(builds) != 1 {
		t.Fatalf("%d build records after a renewal, want 1", len(builds))
	}
}

func TestUploadReplacesAGarbageLatest(t *testing.T) {
	f := newFixture(t, fileStore(t))
	ctx := context.Background()
	key := manifest.LatestKey("retailer", "production")
	for _, junk := range []string{"<html>not json</html>", strings.Repeat("x", manifest.MaxLatestSize+1)} {
		if _, err := f.store.Put(ctx, key, strings.NewReader(junk), store.PutOptions{}); err != nil {
			t.Fatal(err)
		}
		res, err := f.publisher().Upload(ctx, publish.Request{App: "retailer", Dir: writeTree(t, map[string]string{"index.html": fmt.Sprint(len(junk))})})
		if err != nil {
			t.Fatalf("upload over a %d-byte garbage latest.json: %v", len(junk), err)
		}
		if res.Replaced == "" {
			t.Errorf("upload over a %d-byte garbage latest.json does not say it replaced it", len(junk))
		}
		l := f.verifyChannel(t, "retailer", "production")
		if l.Build.Number != res.Number {
			t.Fatalf("latest points at build %d, want %d", l.Build.Number, res.Number)
		}
		// Its sequence is lost: the new one must stay above any a device saw.
		if l.Sequence < time.Now().Add(-time.Hour).Unix() {
			t.Fatalf("sequence after an unreadable latest.json = %d, want the Unix time", l.Sequence)
		}
	}
}

func TestUploadReplacesABrokenBundle(t *testing.T) {
	f := newFixture(t, fileStore(t))
	www := writeTree(t, map[string]string{"index.html": "x"})
	b, err := publish.Zip(www, t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	key := manifest.BundleKey("retailer", b.SHA256)
	if _, err := f.store.Put(context.Background(), key, strings.NewReader("truncated"), store.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.publisher().Upload(context.Background(), publish.Request{App: "retailer", Dir: www}); err != nil {
		t.Fatal(err)
	}
	f.verifyChannel(t, "retailer", "production") // checks the bundle's bytes
}

func TestUploadRefusesAShortExpiry(t *testing.T) {
	f := newFixture(t, fileStore(t))
	for _, d := range []time.Duration{-time.Hour, time.Minute} {
		_, err := f.publisher().Upload(context.Background(), publish.Request{App: "retailer", Dir: writeTree(t, map[string]string{"index.html": "x"}), Expires: d})
		if err == nil || !strings.Contains(err.Error(), "too short") {
			t.Fatalf("expires %v: err = %v, want too short", d, err)
		}
	}
}

func TestUploadRefusesAVersionInUseWithOtherContent(t *testing.T) {
	f := newFixture(t, fileStore(t))
	ctx := context.Background()
	if _, err := f.publisher().Upload(ctx, publish.Request{App: "retailer", Channel: "beta", Version: "3.0.0", Dir: writeTree(t, map[string]string{"index.html": "a"})}); err != nil {
		t.Fatal(err)
	}
	_, err := f.publisher().Upload(ctx, publish.Request{App: "retailer", Version: "3.0.0", Dir: writeTree(t, map[string]string{"index.html": "b"})})
	if err == nil || !strings.Contains(err.Error(), "version 3.0.0 is already build 1 of retailer") {
		t.Fatalf("err = %v, want version in use", err)
	}
	// For good: once beta moved on, build 1 still owns its version.
	if _, err := f.publisher().Upload(ctx, publish.Request{App: "retailer", Channel: "beta", Dir: writeTree(t, map[string]string{"index.html": "c"})}); err != nil {
		t.Fatal(err)
	}
	_, err = f.publisher().Upload(ctx, publish.Request{App: "retailer", Version: "3.0.0", Dir: writeTree(t, map[string]string{"index.html": "b"})})
	if err == nil || !strings.Contains(err.Error(), "version 3.0.0 is already build 1 of retailer") {
		t.Fatalf("after beta moved on: err = %v, want version in use", err)
	}
	// The default form is reserved.
	_, err = f.publisher().Upload(ctx, publish.Request{App: "retailer", Version: "0.0.0-build.7", Dir: writeTree(t, map[string]string{"index.html": "b"})})
	if err == nil || !strings.Contains(err.Error(), "leave version out") {
		t.Fatalf("a version of the default form: err = %v", err)
	}
	// The same content under the same version goes to another channel.
	if _, err := f.publisher().Upload(ctx, publish.Request{App: "retailer", Version: "3.0.0", Dir: writeTree(t, map[string]string{"index.html": "a"})}); err != nil {
		t.Fatal(err)
	}
}

func TestFirstUploadWithANativeRange(t *testing.T) {
	eachStore(t, testFirstUploadWithANativeRange)
}

// A channel's first pointer has no earlier builds to fall back on: an
// upload with a native range to a channel without latest.json publishes a
// pointer with no fallbacks, which verifies.
func testFirstUploadWithANativeRange(t *testing.T, store func(t *testing.T) store.Store) {
	f := newFixture(t, store(t))
	www := writeTree(t, map[string]string{"index.html": "<html>", "main.js": "notifyAppReady()"})
	ctx := context.Background()
	for _, r := range []struct{ channel, min, max string }{{"new", "2.0.0", ""}, {"other", "", "3.1"}, {"both", "1.0", "2.0"}} {
		res, err := f.publisher().Upload(ctx, publish.Request{App: "retailer", Channel: r.channel, Dir: www, MinNative: r.min, MaxNative: r.max})
		if err != nil {
			t.Fatalf("first upload to %s with min_native=%q max_native=%q: %v", r.channel, r.min, r.max, err)
		}
		l := f.verifyChannel(t, "retailer", r.channel)
		if res.Outcome != publish.Published || l.Build.MinNative != r.min || l.Build.MaxNative != r.max || len(l.Fallbacks) != 0 || l.Sequence != 1 {
			t.Fatalf("first upload to %s = %+v; latest = %+v", r.channel, res, l)
		}
	}
}
