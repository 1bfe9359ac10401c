package tracker

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/cartona/deploy/manifest"
	"github.com/cartona/deploy/store"
)

func TestSeedClientWithCDN(t *testing.T) { testSeedClient(t, true) }
func TestSeedClientLocal(t *testing.T)   { testSeedClient(t, false) }

// testSeedClient plays the seed's DeployUpdateService step by step:
// getLatest, CapacitorUpdater.download of the /build/download URL (which
// follows redirects), then saveEvent's /build/download/complete.
func testSeedClient(t *testing.T, withCDN bool) {
	f := newFixture(t)
	ref := f.publish("photo-gallery", "production", "1.0.0")
	cfg := f.config(t)
	cfg.StatsToken = "s3cret"
	var cdnHits atomic.Int32
	if withCDN {
		files := http.FileServer(http.Dir(f.dir))
		cdn := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			cdnHits.Add(1)
			files.ServeHTTP(w, r)
		}))
		t.Cleanup(cdn.Close)
		cfg.CDN = cdn.URL + "/"
	}
	_, base := startServer(t, cfg)

	// getLatest(): GET /build/latest?app=&device=, then json.build.
	params := url.Values{"app": {"photo-gallery"}, "device": {deviceA}}
	resp, body := do(t, nil, "GET", base+"/build/latest?"+params.Encode(), nil, "Origin", "capacitor://localhost")
	if resp.StatusCode != 200 {
		t.Fatalf("latest: %s %s", resp.Status, body)
	}
	if got := resp.Header.Get("Access-Control-Allow-Origin"); got != "*" {
		t.Errorf("Access-Control-Allow-Origin = %q", got)
	}
	var answer struct {
		Build  map[string]any  `json:"build"`
		Latest json.RawMessage `json:"latest"`
		ACL    json.RawMessage `json:"acl"`
	}
	if err := json.Unmarshal(body, &answer); err != nil {
		t.Fatal(err)
	}
	latest := answer.Build
	want := map[string]any{"id": ref.ID, "build": "1.0.0", "sha256": ref.SHA256, "size": float64(ref.Size),
		"app": "photo-gallery", "channel": "production", "number": float64(1)}
	for k, v := range want {
		if latest[k] != v {
			t.Errorf("build.%s = %v, want %v", k, latest[k], v)
		}
	}
	if u, _ := latest["url"].(string); !strings.HasPrefix(u, base+"/build/download?id="+ref.ID) {
		t.Errorf("build.url = %q", u)
	}
	// The device can verify what it was told with the pinned root key.
	l, _, err := f.trust.VerifyLatest(answer.ACL, answer.Latest, manifest.Expect{App: "photo-gallery", Channel: "production", Now: time.Now()})
	if err != nil || l.Build != ref {
		t.Fatalf("device-side verification: %v, %+v", err, l)
	}

	// download(): the plugin's HTTP client follows the redirect.
	dl := base + "/build/download?" + url.Values{"id": {latest["id"].(string)}, "device": {deviceA}}.Encode()
	resp, _ = do(t, noRedirects, "HEAD", dl, nil) // a HEAD is not counted
	if withCDN {
		if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != strings.TrimSuffix(cfg.CDN, "/")+"/"+ref.Bundle {
			t.Fatalf("download: %s Location %q, want 302 to the CDN", resp.Status, resp.Header.Get("Location"))
		}
	} else if resp.StatusCode != 200 || resp.Header.Get("Content-Length") != strconv.FormatInt(ref.Size, 10) {
		t.Fatalf("download: %s Content-Length %q", resp.Status, resp.Header.Get("Content-Length"))
	}
	resp, data := do(t, nil, "GET", dl, nil)
	if resp.StatusCode != 200 {
		t.Fatalf("download: %s", resp.Status)
	}
	sum := sha256.Sum256(data)
	if hex.EncodeToString(sum[:]) != latest["sha256"] || int64(len(data)) != ref.Size {
		t.Fatalf("downloaded %d bytes that do not match sha256 and size", len(data))
	}
	zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := zr.Open("index.html"); err != nil {
		t.Fatalf("bundle has no index.html at its root: %v", err)
	}
	if withCDN && cdnHits.Load() != 1 {
		t.Errorf("CDN served %d requests, want 1", cdnHits.Load())
	}
	if !withCDN { // resume with Range, as the plugin does
		resp, part := do(t, nil, "GET", dl, nil, "Range", "bytes=10-19")
		if resp.StatusCode != http.StatusPartialContent || !bytes.Equal(part, data[10:20]) {
			t.Errorf("range: %s, %d bytes", resp.Status, len(part))
		}
	}

	// saveEvent(): GET /build/download/complete, then json.ok. The seed
	// calls it again when the app goes to the background.
	for range 2 {
		resp, body = do(t, nil, "GET", base+"/build/download/complete?"+url.Values{"id": {ref.ID}, "device": {deviceA}}.Encode(), nil)
		if resp.StatusCode != 200 || !decode[map[string]bool](t, body)["ok"] {
			t.Fatalf("complete: %s %s", resp.Status, body)
		}
	}

	st, err := GetStats(context.Background(), nil, base, "s3cret", "photo-gallery")
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Builds) != 1 {
		t.Fatalf("stats: %+v", st)
	}
	got := st.Builds[0]
	if got.BuildID != ref.ID || got.Checks != 1 || got.DownloadsStarted != 1 || got.DownloadsCompleted != 1 || got.Devices != 1 {
		t.Errorf("stats = %+v, want 1 check, 1 download started (the Range resume is not a new one), 1 completed, 1 device", got)
	}

	// A new publish shows within the cache TTL; a device that got the old
	// id just before can still download it.
	ref2 := f.publish("photo-gallery", "production", "1.0.1")
	time.Sleep(3 * cfg.CacheTTL)
	_, body = do(t, nil, "GET", base+"/build/latest?"+params.Encode(), nil)
	var again struct{ Build struct{ ID, Build string } }
	json.Unmarshal(body, &again)
	if again.Build.ID != ref2.ID || again.Build.Build != "1.0.1" {
		t.Errorf("after a new publish: %s", body)
	}
	if resp, _ := do(t, nil, "GET", dl, nil); resp.StatusCode != 200 {
		t.Errorf("old build after a new publish: %s", resp.Status)
	}
}

// A tracker restarted after a publish still serves builds it never saw in
// a latest.json, if their signed build records verify.
func TestDownloadOfBuildFromRecord(t *testing.T) {
	f := newFixture(t)
	old := f.publish("retailer", "production", "1")
	f.publish("retailer", "production", "2")
	_, base := startServer(t, f.config(t))
	resp, body := do(t, noRedirects, "GET", base+"/build/download?id="+old.ID+"&device="+deviceA, nil)
	if resp.StatusCode != 200 || int64(len(body)) != old.Size {
		t.Fatalf("download of an older build: %s", resp.Status)
	}
}

// TestLargeBundleFromFile serves a bundle the file store hands out as an
// open file: http.ServeContent with Range, conditional requests and HEAD.
func TestLargeBundleFromFile(t *testing.T) {
	f := newFixture(t)
	noise := make([]byte, 3<<20)
	rand.Read(noise)
	ref := f.publishZip("retailer", "production", "big", makeZip(t, map[string]string{"index.html": "<html>", "assets/noise.bin": string(noise)}))
	if ref.Size <= 1<<20 {
		t.Fatalf("bundle of %d bytes is too small for this test", ref.Size)
	}
	_, base := startServer(t, f.config(t))
	dl := base + "/build/download?id=" + ref.ID + "&device=" + deviceA
	resp, data := do(t, nil, "GET", dl, nil)
	sum := sha256.Sum256(data)
	if resp.StatusCode != 200 || hex.EncodeToString(sum[:]) != ref.SHA256 || resp.Header.Get("Content-Length") != strconv.FormatInt(ref.Size, 10) {
		t.Fatalf("download: %s, %d bytes", resp.Status, len(data))
	}
	resp, part := do(t, nil, "GET", dl, nil, "Range", "bytes=1048576-")
	if resp.StatusCode != http.StatusPartialContent || !bytes.Equal(part, data[1<<20:]) {
		t.Errorf("resume: %s, %d bytes", resp.Status, len(part))
	}
	if resp, _ := do(t, nil, "GET", dl, nil, "If-None-Match", `"`+ref.SHA256+`"`); resp.StatusCode != http.StatusNotModified {
		t.Errorf("If-None-Match: %s", resp.Status)
	}
	if resp, body := do(t, nil, "HEAD", dl, nil); resp.StatusCode != 200 || len(body) != 0 || resp.ContentLength != ref.Size {
		t.Errorf("HEAD: %s, Content-Length %d", resp.Status, resp.ContentLength)
	}
}

// streamingStore hides the Seek of the file store's readers, as the S3
// store's are, and counts reads of bundles.
type streamingStore struct {
	store.Store
	bundleGets atomic.Int32
}

func (s *streamingStore) Get(ctx context.Context, key string) (io.ReadCloser, store.Info, error) {
	rc, info, err := s.Store.Get(ctx, key)
	if strings.Contains(key, "/bundles/") {
		s.bundleGets.Add(1)
	}
	if err != nil {
		return nil, info, err
	}
	return struct {
		io.Reader
		io.Closer
	}{rc, rc}, info, nil
}

// TestTamperedLargeBundleIsNotServed rewrites a bundle of over 1 MiB in
// place with bytes of the same size, from a seekable file and from a
// stream, before the tracker first serves it and after.
func TestTamperedLargeBundleIsNotServed(t *testing.T) {
	for _, stream := range []bool{false, true} {
		t.Run(map[bool]string{false: "file", true: "stream"}[stream], func(t *testing.T) {
			f := newFixture(t)
			noise := make([]byte, 3<<20)
			rand.Read(noise)
			ref := f.publishZip("retailer", "production", "big", makeZip(t, map[string]string{"index.html": "<html>", "assets/noise.bin": string(noise)}))
			path := filepath.Join(f.dir, filepath.FromSlash(ref.Bundle))
			good, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			// tamper writes data over the bundle in place and moves its
			// modification time on, whatever the file system's granularity.
			tamper := func(data []byte) {
				fi, err := os.Stat(path)
				if err != nil {
					t.Fatal(err)
				}
				fh, err := os.OpenFile(path, os.O_WRONLY, 0)
				if err != nil {
					t.Fatal(err)
				}
				if _, err := fh.WriteAt(data, 0); err != nil {
					t.Fatal(err)
				}
				fh.Close()
				mt := fi.ModTime().Add(2 * time.Second)
				os.Chtimes(path, mt, mt)
			}
			evil := bytes.Clone(good)
			evil[len(evil)/2] ^= 0xff

			run := func(wantOK bool) {
				t.Helper()
				var logs logBuffer
				cfg := f.config(t)
				cfg.Log = zerolog.New(&logs)
				ss := &streamingStore{Store: f.store}
				if stream {
					cfg.Store = ss
				}
				_, base := startServer(t, cfg)
				dl := base + "/build/download?id=" + ref.ID + "&device=" + deviceA
				var wg sync.WaitGroup // concurrent first downloads share one check
				for range 8 {
					wg.Go(func() {
						resp, err := http.Get(dl)
						if err != nil {
							t.Error(err)
							return
						}
						body, err := io.ReadAll(resp.Body)
						resp.Body.Close()
						if ok := err == nil && resp.StatusCode == 200 && bytes.Equal(body, good); ok != wantOK {
							t.Errorf("concurrent download: %s, %d bytes, %v", resp.Status, len(body), err)
						}
					})
				}
				wg.Wait()
				for _, rng := range []string{"", "bytes=0-", "bytes=1048576-"} {
					resp, body := do(t, nil, "GET", dl, nil, "Range", rng)
					if wantOK && (resp.StatusCode/100 != 2 || !bytes.Equal(body, good[len(good)-len(body):])) {
						t.Fatalf("download with Range %q: %s, %d bytes", rng, resp.Status, len(body))
					}
					if !wantOK && (resp.StatusCode != http.StatusNotFound || !bytes.Contains(body, []byte("does not match its manifest"))) {
						t.Fatalf("tampered download with Range %q: %s %s", rng, resp.Status, abbrev(string(body)))
					}
				}
				if !wantOK && !strings.Contains(logs.String(), "sha256 differs") {
					t.Errorf("no log of the mismatch:\n%s", logs.String())
				}
				if stream && wantOK { // verified once: one store read per download now
					n := ss.bundleGets.Load()
					do(t, nil, "GET", dl, nil)
					if got := ss.bundleGets.Load() - n; got != 1 {
						t.Errorf("a verified bundle took %d store reads to serve, want 1", got)
					}
				}
				if wantOK { // tampered while this tracker runs, after its verdict
					tamper(evil)
					resp, body := do(t, nil, "GET", dl, nil)
					if resp.StatusCode != http.StatusNotFound || bytes.Contains(body, evil[:64]) {
						t.Fatalf("bundle tampered after it was verified: %s, %d bytes", resp.Status, len(body))
					}
					tamper(good)
				}
			}
			run(true)
			tamper(evil)
			run(false) // a new tracker: no verdict cached
		})
	}
}

// frozenInfoStore reports the same version of every object however it
// changes, as a store with weak ETags might.
type frozenInfoStore struct{ streamingStore }

func (s *frozenInfoStore) Get(ctx context.Context, key string) (io.ReadCloser, store.Info, error) {
	rc, info, err := s.streamingStore.Get(ctx, key)
	info.ModTime, info.ETag = time.Unix(1700000000, 0), "frozen"
	return rc, info, err
}

// TestStreamedBundleCutOffOnMismatch changes a verified bundle behind a
// version that does not change: the stream's own hash must cut the
// download off before its last byte.
func TestStreamedBundleCutOffOnMismatch(t *testing.T) {
	f := newFixture(t)
	noise := make([]byte, 2<<20)
	rand.Read(noise)
	ref := f.publishZip("retailer", "production", "big", makeZip(t, map[string]string{"index.html": "<html>", "assets/noise.bin": string(noise)}))
	cfg := f.config(t)
	cfg.Store = &frozenInfoStore{streamingStore{Store: f.store}}
	_, base := startServer(t, cfg)
	dl := base + "/build/download?id=" + ref.ID + "&device=" + deviceA
	if resp, body := do(t, nil, "GET", dl, nil); resp.StatusCode != 200 || int64(len(body)) != ref.Size {
		t.Fatalf("download: %s, %d bytes", resp.Status, len(body))
	}
	path := filepath.Join(f.dir, filepath.FromSlash(ref.Bundle))
	data, _ := os.ReadFile(path)
	data[len(data)/2] ^= 0xff
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get(dl)
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err == nil || int64(len(body)) >= ref.Size {
		t.Fatalf("changed bundle: %s, %d of %d bytes, read error %v; want a cut-off download", resp.Status, len(body), ref.Size, err)
	}
	if resp, _ := do(t, nil, "GET", dl, nil); resp.StatusCode != http.StatusNotFound {
		t.Errorf("after the cut-off download: %s, want 404", resp.Status)
	}
}

// TestCDNRedirectChecksBundle replaces a bundle in the store with other
// bytes of the same size, as someone with write access to the store alone
// could, after the tracker redirected a download of it to the CDN: no
// device is sent to the CDN for bytes that do not match the manifest,
// while an unchanged bundle is redirected with one read of it in all.
func TestCDNRedirectChecksBundle(t *testing.T) {
	for _, kind := range []string{"file", "s3"} {
		t.Run(kind, func(t *testing.T) {
			f := newFixture(t)
			ref := f.publish("retailer", "production", "1")
			var st store.Store = f.store
			if kind == "s3" {
				st = f.onS3(t)
			}
			cdn := cdnOf(t, st)
			replace := func(data []byte) {
				t.Helper()
				if _, err := st.Put(context.Background(), ref.Bundle, bytes.NewReader(data), store.PutOptions{}); err != nil {
					t.Fatal(err)
				}
			}
			start := func() (string, *streamingStore) {
				cs := &streamingStore{Store: st}
				cfg := f.config(t)
				cfg.Store, cfg.CDN = cs, cdn
				_, base := startServer(t, cfg)
				return base + "/build/download?id=" + ref.ID + "&device=" + deviceA, cs
			}
			redirected := func(dl string) {
				t.Helper()
				resp, body := do(t, noRedirects, "GET", dl, nil)
				if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != cdn+"/"+ref.Bundle {
					t.Fatalf("download: %s Location %q %s, want 302 to the CDN", resp.Status, resp.Header.Get("Location"), abbrev(string(body)))
				}
			}
			refused := func(dl string) {
				t.Helper()
				resp, body := do(t, noRedirects, "GET", dl, nil)
				if resp.StatusCode != http.StatusNotFound || resp.Header.Get("Location") != "" ||
					decode[ErrorResponse](t, body).Error != codeNotServable || !bytes.Contains(body, []byte("does not match its manifest")) {
					t.Fatalf("replaced bundle: %s Location %q %s, want 404 not_servable and no redirect", resp.Status, resp.Header.Get("Location"), abbrev(string(body)))
				}
			}

			dl, cs := start()
			for range 3 {
				redirected(dl)
			}
			if n := cs.bundleGets.Load(); n != 1 {
				t.Errorf("three redirects of an unchanged bundle read it %d times, want 1", n)
			}
			resp, good := do(t, nil, "GET", dl, nil) // the device follows the redirect
			if sum := sha256.Sum256(good); resp.StatusCode != 200 || hex.EncodeToString(sum[:]) != ref.SHA256 {
				t.Fatalf("download through the CDN: %s, %d bytes that do not match the manifest", resp.Status, len(good))
			}
			evil := bytes.Clone(good)
			evil[len(evil)/2] ^= 0xff
			replace(evil)
			refused(dl)
			refused(dl)
			fresh, _ := start() // a tracker that never saw the bundle
			refused(fresh)
			replace(good)
			redirected(dl)
			redirected(fresh)
		})
	}
}

// TestLargeBundleRewrittenWithItsTimes rewrites a bundle of over 1 MiB in
// place, after a first good download, with as many other bytes, and sets
// its modification time back: the tracker must see a new object version,
// hash it again and refuse it, whether it serves bundles or redirects to
// the CDN.
func TestLargeBundleRewrittenWithItsTimes(t *testing.T) {
	for _, withCDN := range []bool{false, true} {
		t.Run(map[bool]string{false: "served", true: "cdn"}[withCDN], func(t *testing.T) {
			f := newFixture(t)
			noise := make([]byte, 3<<20)
			rand.Read(noise)
			ref := f.publishZip("retailer", "production", "big", makeZip(t, map[string]string{"index.html": "<html>", "assets/noise.bin": string(noise)}))
			cfg := f.config(t)
			if withCDN {
				cfg.CDN = cdnOf(t, f.store)
			}
			_, base := startServer(t, cfg)
			dl := base + "/build/download?id=" + ref.ID + "&device=" + deviceA
			resp, good := do(t, noRedirects, "GET", dl, nil)
			if withCDN && resp.StatusCode != http.StatusFound || !withCDN && (resp.StatusCode != 200 || int64(len(good)) != ref.Size) {
				t.Fatalf("first download: %s, %d bytes", resp.Status, len(good))
			}

			time.Sleep(20 * time.Millisecond) // later than the publish, as an attacker would be
			path := filepath.Join(f.dir, filepath.FromSlash(ref.Bundle))
			fi, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			fh, err := os.OpenFile(path, os.O_WRONLY, 0)
			if err != nil {
				t.Fatal(err)
			}
			evil := f.get(ref.Bundle)
			evil[len(evil)/2] ^= 0xff
			if _, err := fh.WriteAt(evil[len(evil)/2:len(evil)/2+1], int64(len(evil)/2)); err != nil {
				t.Fatal(err)
			}
			fh.Close()
			if err := os.Chtimes(path, fi.ModTime(), fi.ModTime()); err != nil {
				t.Fatal(err)
			}

			resp, body := do(t, noRedirects, "GET", dl, nil)
			if resp.StatusCode != http.StatusNotFound || resp.Header.Get("Location") != "" || !bytes.Contains(body, []byte("does not match its manifest")) {
				t.Fatalf("rewritten bundle: %s Location %q, %d bytes", resp.Status, resp.Header.Get("Location"), len(body))
			}
		})
	}
}
