package tracker

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/cartona/deploy/internal/s3test"
	"github.com/cartona/deploy/manifest"
	"github.com/cartona/deploy/state"
	"github.com/cartona/deploy/state/sqlite"
	"github.com/cartona/deploy/store"
	"github.com/cartona/deploy/store/file"
	"github.com/cartona/deploy/store/s3"
)

// fixture is a file store with an ACL signed by a root key and a user key
// that may publish every app: what `deploy init` and `deploy upload` would
// leave behind, written directly so these tests do not depend on publish.
type fixture struct {
	t      testing.TB
	dir    string
	store  *file.Store
	root   ed25519.PrivateKey
	user   ed25519.PrivateKey
	trust  manifest.Trust
	acl    int64
	seq    map[string]int64
	number map[string]int64
	// halter, when set, is granted can_halt (and nothing else) on every app.
	halter ed25519.PrivateKey
}

func newFixture(t testing.TB) *fixture {
	t.Helper()
	dir := t.TempDir()
	st, err := file.Open(filepath.Join(dir, "store"))
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{t: t, dir: st.Root, store: st, root: newKey(t), user: newKey(t), seq: map[string]int64{}, number: map[string]int64{}}
	f.trust = manifest.Trust{Roots: []ed25519.PublicKey{manifest.Public(f.root)}}
	f.writeACL()
	return f
}

func newKey(t testing.TB) ed25519.PrivateKey {
	_, k, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// writeACL signs and stores the next ACL version, granting f.user every app.
func (f *fixture) writeACL() { f.writeGrant(true) }

// writeGrant signs and stores the next ACL version, in which f.user may
// upload to every app or to none.
func (f *fixture) writeGrant(upload bool) {
	f.acl++
	acl := manifest.ACL{Version: f.acl, Issued: time.Now().UTC(), Users: []manifest.User{{
		Name: "ci", Keys: []string{manifest.FormatPublicKey(manifest.Public(f.user))},
		Grants: map[string]manifest.Grant{manifest.AllApps: {CanUpload: upload}},
	}}}
	if f.halter != nil {
		acl.Users = append(acl.Users, manifest.User{Name: "tracker", Keys: []string{manifest.FormatPublicKey(manifest.Public(f.halter))},
			Grants: map[string]manifest.Grant{manifest.AllApps: {CanHalt: true}}})
	}
	f.put(manifest.ACLKey, f.sign(manifest.TypeACL, acl, f.root))
}

func (f *fixture) sign(typ string, v any, k ed25519.PrivateKey) []byte {
	env, err := manifest.Sign(typ, v, k)
	if err != nil {
		f.t.Fatal(err)
	}
	return env.Marshal()
}

func (f *fixture) put(key string, data []byte) {
	if _, err := f.store.Put(context.Background(), key, bytes.NewReader(data), store.PutOptions{}); err != nil {
		f.t.Fatal(err)
	}
}

func (f *fixture) get(key string) []byte {
	rc, _, err := f.store.Get(context.Background(), key)
	if err != nil {
		f.t.Fatal(err)
	}
	defer rc.Close()
	b, _ := io.ReadAll(rc)
	return b
}

// publish stores a new build of app with the given version and points
// channel at it. opts may edit the build before it is signed.
func (f *fixture) publish(app, channel, version string, opts ...func(*manifest.BuildRef)) manifest.BuildRef {
	return f.publishZip(app, channel, version, makeZip(f.t, map[string]string{
		"index.html": "<!doctype html><title>" + version + "</title>",
		"main.js":    "CapacitorUpdater.notifyAppReady(); // " + version + strings.Repeat(" padding", 200),
	}), opts...)
}

// publishZip is publish with the bundle's bytes given.
func (f *fixture) publishZip(app, channel, version string, zipData []byte, opts ...func(*manifest.BuildRef)) manifest.BuildRef {
	sum := sha256.Sum256(zipData)
	sha := hex.EncodeToString(sum[:])
	f.number[app]++
	n := f.number[app]
	ref := manifest.BuildRef{ID: manifest.BuildID(app, n), Number: n, Version: version,
		Bundle: manifest.BundleKey(app, sha), SHA256: sha, Size: int64(len(zipData))}
	for _, o := range opts {
		o(&ref)
	}
	f.put(ref.Bundle, zipData)
	f.put(manifest.BuildKey(app, n), f.sign(manifest.TypeBuild, manifest.Build{App: app, BuildRef: ref, Uploader: "ci", Created: time.Now().UTC()}, f.user))
	f.point(app, channel, ref)
	return ref
}

// point signs a new latest.json of channel naming ref.
func (f *fixture) point(app, channel string, ref manifest.BuildRef) {
	f.pointer(manifest.Latest{App: app, Channel: channel, Build: ref})
}

// pointer signs l as the channel's next latest.json, with the next
// sequence and a day of validity.
func (f *fixture) pointer(l manifest.Latest) {
	k := l.App + "/" + l.Channel
	f.seq[k]++
	now := time.Now().UTC()
	l.Sequence, l.Issued, l.Expires = f.seq[k], now, now.Add(24*time.Hour)
	f.put(manifest.LatestKey(l.App, l.Channel), f.sign(manifest.TypeLatest, l, f.user))
}

// onS3 copies every object of the fixture's store into a fresh bucket of
// a real S3 server (versitygw) and returns that bucket as a store.
func (f *fixture) onS3(t testing.TB) store.Store {
	t.Helper()
	srv := s3test.Start(t)
	st := s3.New(srv.Client(), srv.Bucket, "deploy")
	ctx := context.Background()
	infos, err := f.store.List(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	for _, info := range infos {
		if _, err := st.Put(ctx, info.Key, bytes.NewReader(f.get(info.Key)), store.PutOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	return st
}

// cdnOf serves the objects of st under their keys, as a CDN in front of
// the store does, until the test ends, and returns its base URL.
func cdnOf(t testing.TB, st store.Store) string {
	cdn := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rc, _, err := st.Get(r.Context(), strings.TrimPrefix(r.URL.Path, "/"))
		if err != nil {
			http.NotFound(w, r)
			return
		}
		defer rc.Close()
		io.Copy(w, rc)
	}))
	t.Cleanup(cdn.Close)
	return cdn.URL
}

// config is a tracker configuration over the fixture's store with a fresh
// state that reports its commits to the metrics, a short cache and no rate
// limits.
func (f *fixture) config(t testing.TB) Config {
	metrics := NewMetrics()
	st := openStateWith(t, filepath.Join(t.TempDir(), "state.db"), state.Options{Log: zerolog.New(io.Discard), OnCommit: metrics.ObserveCommit})
	return Config{
		Store:    f.store,
		Trust:    f.trust,
		State:    st,
		CacheTTL: 10 * time.Millisecond,
		Log:      zerolog.New(io.Discard),
		Limits:   Limits{DeviceRate: -1, AddrRate: -1},
		Metrics:  metrics,
	}
}

// openState opens the SQLite state at path, closed at the end of the test
// unless a Server closed it before.
func openState(t testing.TB, path string) state.State {
	t.Helper()
	return openStateWith(t, path, state.Options{Log: zerolog.New(io.Discard)})
}

// openStateWith is openState with options.
func openStateWith(t testing.TB, path string, opts state.Options) state.State {
	t.Helper()
	st, err := sqlite.Open(path, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func makeZip(t testing.TB, files map[string]string) []byte {
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	names := make([]string, 0, len(files))
	for name := range files {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		if body, ok := files[name]; ok {
			w, err := zw.CreateHeader(&zip.FileHeader{Name: name, Method: zip.Deflate})
			if err != nil {
				t.Fatal(err)
			}
			w.Write([]byte(body))
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// startServer serves cfg on a loopback port until the test ends.
func startServer(t testing.TB, cfg Config) (*Server, string) {
	t.Helper()
	srv, base, stop := startStoppable(t, cfg)
	t.Cleanup(stop)
	return srv, base
}

// startStoppable serves cfg on a loopback port until stop is called: stop
// shuts the server down and closes it, as `deploy serve` does on exit.
func startStoppable(t testing.TB, cfg Config) (*Server, string, func()) {
	t.Helper()
	srv, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("serve: %v", err)
			}
			if err := srv.Close(); err != nil {
				t.Errorf("close: %v", err)
			}
		})
	}
	return srv, "http://" + ln.Addr().String(), stop
}

// do makes a request and returns the answer with its body read.
func do(t testing.TB, c *http.Client, method, url string, body []byte, hdr ...string) (*http.Response, []byte) {
	t.Helper()
	var r io.Reader
	if body != nil {
		r = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, url, r)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	if body != nil && req.Header.Get("Content-Type") == "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if c == nil {
		c = http.DefaultClient
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, b
}

func mustJSON(t testing.TB, v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func decode[T any](t testing.TB, b []byte) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("decode %s: %v", b, err)
	}
	return v
}

// noRedirects is a client that returns redirects instead of following them.
var noRedirects = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

// logBuffer collects log lines safely across goroutines.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

const (
	deviceA = "0f8fad5b-d9cb-469f-a165-70867728950e"
	deviceB = "7c9e6679-7425-40de-944b-e07fc1f90ae7"
)
