package tracker

import (
	"archive/zip"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash/crc32"
	"io"
	"maps"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/andybalholm/brotli"

	"github.com/cartona/deploy/internal/s3test"
	"github.com/cartona/deploy/manifest"
	"github.com/cartona/deploy/publish"
	"github.com/cartona/deploy/store"
	"github.com/cartona/deploy/store/s3"
)

// publishFiles publishes a build of files as `deploy upload` stores one
// with per-file objects: the zip, each file once by content (its Brotli
// form where that is smaller), the file manifest, and a signed build record
// naming the manifest's digest and the zip's CRC32.
func (f *fixture) publishFiles(app, channel, version string, files map[string]string) manifest.BuildRef {
	m := manifest.FileManifest{App: app}
	for _, name := range slices.Sorted(maps.Keys(files)) {
		content := []byte(files[name])
		e := manifest.FileEntry{Name: name, SHA256: sha256Hex(content), Size: int64(len(content))}
		obj := content
		if br := brotliBytes(f.t, content); len(br) < len(content) || strings.HasSuffix(name, ".br") {
			e.Encoding, obj = manifest.EncodingBrotli, br
		}
		f.put(manifest.FileKey(app, e.SHA256, e.Encoding), obj)
		m.Files = append(m.Files, e)
	}
	data := mustJSON(f.t, m)
	sum := sha256Hex(data)
	stored, _ := manifest.EncodeStoredFileManifest(data)
	f.put(manifest.FileManifestKey(app, sum), stored)
	zipData := makeZip(f.t, files)
	return f.publishZip(app, channel, version, zipData, func(b *manifest.BuildRef) {
		b.CRC32 = fmt.Sprintf("%08x", crc32.ChecksumIEEE(zipData))
		b.FilesSHA256, b.FilesSize = sum, int64(len(data))
	})
}

// fileManifest returns the bytes of the stored file manifest whose SHA-256
// is sum, decoded from its stored form.
func (f *fixture) fileManifest(app, sum string) []byte {
	data, err := manifest.DecodeStoredFileManifest(f.get(manifest.FileManifestKey(app, sum)), manifest.MaxFileManifestSize)
	if err != nil {
		f.t.Fatal(err)
	}
	return data
}

func sha256Hex(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

func brotliBytes(t testing.TB, b []byte) []byte {
	var buf bytes.Buffer
	w := brotli.NewWriterLevel(&buf, 6)
	w.Write(b)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// startCDN serves the fixture's store folder over loopback HTTP, as a CDN
// serves the store's keys, and counts the bytes it sends.
func startCDN(t testing.TB, f *fixture) (string, *countingHandler) {
	h := &countingHandler{next: http.FileServer(http.Dir(f.dir))}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return "http://" + ln.Addr().String(), h
}

type countingHandler struct {
	next     http.Handler
	requests int
}

func (c *countingHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	c.requests++
	c.next.ServeHTTP(w, r)
}

// ionicTree is a generated web build shaped like an Ionic/Angular one:
// index.html, many small chunks and a few large ones.
func ionicTree(files int) map[string]string {
	tree := map[string]string{"index.html": "<!doctype html><html><head><script src=\"main.js\"></script></head><body><app-root></app-root></body></html>\n"}
	for i := range files {
		var b strings.Builder
		lines := 20 + (i*37)%400
		if i%50 == 0 {
			lines = 3000
		}
		for l := range lines {
			fmt.Fprintf(&b, "export const v%d_%d = (a, b) => a * %d + b - %d; // chunk %d line %d\n", i, l, i*l+7, l^i, i, l)
		}
		tree[fmt.Sprintf("chunk-%04d.js", i)] = b.String()
	}
	tree["main.js"] = "import { CapacitorUpdater } from '@capgo/capacitor-updater';\nCapacitorUpdater.notifyAppReady();\nconsole.log('v1');\n"
	tree["assets/icon.svg"] = `<svg xmlns="http://www.w3.org/2000/svg"><circle r="4"/></svg>`
	return tree
}

// pluginDevice plays the Capgo plugin on a device: it asks updateUrl, and
// downloads the answer as the plugin version it claims does, then checks
// what it downloaded as the plugin does.
type pluginDevice struct {
	t        testing.TB
	id       string
	plugin   string
	platform string
	version  string            // version_name of the current bundle
	tree     map[string][]byte // the current bundle's files
	bytes    int64             // received over HTTP, answers included
}

// check POSTs an update check and returns the answer.
func (d *pluginDevice) check(updates string) map[string]any {
	d.t.Helper()
	req := pluginRequest(d.id, d.version, "1.0.0")
	req["plugin_version"], req["platform"] = d.plugin, d.platform
	// As OkHttp and URLSession, it accepts gzip.
	resp, body := do(d.t, nil, "POST", updates, mustJSON(d.t, req), "Accept-Encoding", "gzip")
	d.bytes += int64(len(body))
	if resp.StatusCode != 200 {
		d.t.Fatalf("update check: %s %s", resp.Status, body)
	}
	if resp.Header.Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(bytes.NewReader(body))
		if err == nil {
			body, err = io.ReadAll(zr)
		}
		if err != nil {
			d.t.Fatalf("gzip answer: %v", err)
		}
	}
	return decode[map[string]any](d.t, body)
}

func (d *pluginDevice) get(url string) []byte {
	d.t.Helper()
	resp, body := do(d.t, nil, "GET", url, nil)
	if resp.StatusCode != 200 {
		d.t.Fatalf("GET %s: %s", url, resp.Status)
	}
	d.bytes += int64(len(body))
	return body
}

// applyManifest downloads a Capgo manifest as plugins from 8.x (and
// 5.10.0, 6.14.28, 7.0.38) do: a file whose hash is in the current bundle
// is copied from it, every other one downloaded, Brotli-decompressed when
// its file_name ends in ".br", and its SHA-256 compared with file_hash.
// It returns the new bundle's files, or an error as the plugin fails.
func (d *pluginDevice) applyManifest(entries []any) (map[string][]byte, error) {
	have := map[string][]byte{}
	for _, content := range d.tree {
		have[sha256Hex(content)] = content
	}
	next := map[string][]byte{}
	for _, raw := range entries {
		e := raw.(map[string]any)
		name, hash, url := e["file_name"].(string), e["file_hash"].(string), e["download_url"].(string)
		target, isBrotli := strings.CutSuffix(name, ".br")
		if _, dup := next[target]; dup {
			return nil, fmt.Errorf("duplicate manifest target path %s", target)
		}
		content, ok := have[hash]
		if !ok {
			content = d.get(url)
			if isBrotli {
				var err error
				if content, err = io.ReadAll(brotli.NewReader(bytes.NewReader(content))); err != nil {
					return nil, fmt.Errorf("decompress %s: %v", name, err)
				}
			}
		}
		if got := sha256Hex(content); got != hash {
			return nil, fmt.Errorf("checksum of %s is %s, manifest says %s", target, got, hash)
		}
		next[target] = content
	}
	return next, nil
}

// applyZip downloads the zip at url and checks it against checksum as the
// plugin version claims: CRC32 before 5.10.0 / 6.14.28 / 7.0.2, else
// SHA-256; an empty checksum is not checked.
func (d *pluginDevice) applyZip(url, checksum string, crc bool) map[string][]byte {
	d.t.Helper()
	data := d.get(url)
	got := sha256Hex(data)
	if crc {
		got = fmt.Sprintf("%08x", crc32.ChecksumIEEE(data))
	}
	if checksum != "" && got != checksum {
		d.t.Fatalf("checksum_fail: zip has %s, answer says %s", got, checksum)
	}
	return unzip(d.t, data)
}

func treeBytes(tree map[string]string) map[string][]byte {
	out := map[string][]byte{}
	for k, v := range tree {
		out[k] = []byte(v)
	}
	return out
}

func sameTree(t testing.TB, got, want map[string][]byte) {
	t.Helper()
	if len(got) != len(want) {
		for name := range got {
			if _, ok := want[name]; !ok {
				t.Errorf("extra %q", name)
			}
		}
		t.Fatalf("tree has %d files, want %d", len(got), len(want))
	}
	for name, w := range want {
		if !bytes.Equal(got[name], w) {
			t.Fatalf("file %s differs from v2", name)
		}
	}
}

// deltaSetup publishes v1 and a one-line v2 of an Ionic-shaped tree with
// per-file objects, and starts a CDN over the store and a tracker that
// points download URLs at it.
func deltaSetup(t *testing.T, files int) (f *fixture, v1, v2 map[string]string, ref2 manifest.BuildRef, updates string, cdn *countingHandler) {
	f, v1, v2, ref2 = publishPair(t, files)
	base, cdn := startCDN(t, f)
	cfg := f.config(t)
	cfg.CDN = base
	_, tracker := startServer(t, cfg)
	return f, v1, v2, ref2, tracker + "/capgo/retailer/updates", cdn
}

// publishPair uploads v1 and a one-line v2 of an Ionic-shaped tree to the
// fixture's folder store as `deploy upload` does.
func publishPair(t *testing.T, files int) (f *fixture, v1, v2 map[string]string, ref2 manifest.BuildRef) {
	f = newFixture(t)
	v1, v2 = treePair(files)
	f.upload(f.store, "production", "1.0.0", v1)
	ref2, _ = f.upload(f.store, "production", "2.0.0", v2)
	return f, v1, v2, ref2
}

// treePair is an Ionic-shaped tree and a one-line change of it, in two
// files.
func treePair(files int) (v1, v2 map[string]string) {
	v1 = ionicTree(files)
	v2 = maps.Clone(v1)
	v2["chunk-0007.js"] = strings.Replace(v1["chunk-0007.js"], "line 3\n", "line 3 (fixed)\n", 1)
	v2["main.js"] = strings.Replace(v1["main.js"], "'v1'", "'v2'", 1)
	return v1, v2
}

// upload publishes files as app "retailer" to channel of st with the
// uploader's code path (publish.Publisher, which `deploy upload` runs), and
// keeps the fixture's build and sequence counters in step.
func (f *fixture) upload(st store.Store, channel, version string, files map[string]string) (manifest.BuildRef, *publish.Result) {
	f.t.Helper()
	dir := f.t.TempDir()
	for name, content := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			f.t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			f.t.Fatal(err)
		}
	}
	pub := &publish.Publisher{Store: st, Key: f.user, Trust: f.trust}
	res, err := pub.Upload(context.Background(), publish.Request{App: "retailer", Channel: channel, Dir: dir, Version: version})
	if err != nil {
		f.t.Fatal(err)
	}
	f.number["retailer"], f.seq["retailer/"+channel] = res.Number, res.Sequence
	b, err := pub.ReadBuild(context.Background(), "retailer", res.Number)
	if err != nil {
		f.t.Fatal(err)
	}
	return b.BuildRef, res
}

// TestDeltaPluginSimulation plays a delta-capable plugin (8.51.14) on a
// device running v1: the tracker answers v2's file manifest, the device
// downloads only what v1 lacks, checks every hash, and ends with v2's files
// byte for byte.
func TestDeltaPluginSimulation(t *testing.T) {
	_, v1, v2, ref2, updates, cdn := deltaSetup(t, 300)
	d := &pluginDevice{t: t, id: deviceA, plugin: "8.51.14", platform: "android", version: "1.0.0", tree: treeBytes(v1)}
	ans := d.check(updates)
	entries, ok := ans["manifest"].([]any)
	if !ok || ans["version"] != "2.0.0" || ans["checksum"] != ref2.SHA256 || ans["url"] == "" {
		t.Fatalf("answer without a manifest: %.300s", mustJSON(t, ans))
	}
	if len(entries) != len(v2) {
		t.Fatalf("manifest has %d entries, v2 has %d files", len(entries), len(v2))
	}
	got, err := d.applyManifest(entries)
	if err != nil {
		t.Fatal(err)
	}
	sameTree(t, got, treeBytes(v2))
	if cdn.requests != 2 {
		t.Errorf("device made %d CDN requests, want 2 (the two changed files)", cdn.requests)
	}
	t.Logf("delta: %d bytes over HTTP (answer with manifest + changed files), zip is %d bytes (%.1f %%)", d.bytes, ref2.Size, 100*float64(d.bytes)/float64(ref2.Size))
	if d.bytes > ref2.Size/20 {
		t.Errorf("delta transferred %d bytes, over 5 %% of the %d-byte zip", d.bytes, ref2.Size)
	}

	// The same device on an old plugin gets the zip with a CRC32 checksum.
	old := &pluginDevice{t: t, id: deviceB, plugin: "5.9.5", platform: "ios", version: "1.0.0", tree: treeBytes(v1)}
	ans = old.check(updates)
	if _, has := ans["manifest"]; has || ans["checksum"] != ref2.CRC32 {
		t.Fatalf("old plugin's answer: %.300s, want the zip with CRC32 %s", mustJSON(t, ans), ref2.CRC32)
	}
	sameTree(t, old.applyZip(ans["url"].(string), ans["checksum"].(string), true), treeBytes(v2))
	t.Logf("zip: %d bytes over HTTP", old.bytes)
}

// TestDeltaAnswerByPluginVersion checks which plugin versions get the
// manifest and which checksum each gets, on both platforms, and that each
// one's download succeeds as that version checks it.
func TestDeltaAnswerByPluginVersion(t *testing.T) {
	_, v1, v2, ref2, updates, _ := deltaSetup(t, 30)
	for _, c := range []struct {
		plugin, platform string
		manifest         bool
		checksum         string // "sha", "crc" or ""
	}{
		{"4.62.0", "android", false, "crc"},
		{"5.9.5", "android", false, "crc"},
		{"5.10.0", "ios", true, "sha"},
		{"6.14.27", "android", false, "crc"},
		{"6.14.28", "ios", true, "sha"},
		{"6.25.8", "android", true, "sha"},
		{"7.0.1", "ios", false, "crc"},
		{"7.0.2", "ios", false, "sha"},
		{"7.0.29", "android", false, ""},
		{"7.0.30", "android", false, "sha"},
		{"7.0.37", "ios", false, "sha"},
		{"7.0.38", "android", true, "sha"},
		{"8.51.14", "ios", true, "sha"},
		{"not-a-version", "android", false, "sha"},
	} {
		t.Run(c.plugin+"/"+c.platform, func(t *testing.T) {
			d := &pluginDevice{t: t, id: deviceA, plugin: c.plugin, platform: c.platform, version: "1.0.0", tree: treeBytes(v1)}
			ans := d.check(updates)
			want := map[string]string{"sha": ref2.SHA256, "crc": ref2.CRC32, "": ""}[c.checksum]
			if ans["checksum"] != want {
				t.Errorf("checksum %v, want %q", ans["checksum"], want)
			}
			entries, has := ans["manifest"].([]any)
			if has != c.manifest {
				t.Fatalf("manifest in answer: %v, want %v", has, c.manifest)
			}
			var got map[string][]byte
			if has {
				var err error
				if got, err = d.applyManifest(entries); err != nil {
					t.Fatal(err)
				}
			} else {
				got = d.applyZip(ans["url"].(string), ans["checksum"].(string), c.checksum == "crc")
			}
			sameTree(t, got, treeBytes(v2))
		})
	}
}

// TestDeltaRefused breaks the store in the ways a tampered or broken upload
// would: a device must then get the zip, never a manifest, and the
// tracker logs why.
func TestDeltaRefused(t *testing.T) {
	for _, c := range []struct {
		name   string
		breakf func(f *fixture, ref manifest.BuildRef)
		log    string
	}{
		{"tampered manifest", func(f *fixture, ref manifest.BuildRef) {
			f.put(manifest.FileManifestKey("retailer", ref.FilesSHA256), bytes.Replace(f.fileManifest("retailer", ref.FilesSHA256), []byte(`"main.js"`), []byte(`"evil.js"`), 1))
		}, "files_mismatch"},
		{"tampered manifest in its gzip form", func(f *fixture, ref manifest.BuildRef) {
			stored, _ := manifest.EncodeStoredFileManifest(bytes.Replace(f.fileManifest("retailer", ref.FilesSHA256), []byte(`"main.js"`), []byte(`"evil.js"`), 1))
			f.put(manifest.FileManifestKey("retailer", ref.FilesSHA256), stored)
		}, "files_mismatch"},
		{"gzip form followed by other bytes", func(f *fixture, ref manifest.BuildRef) {
			key := manifest.FileManifestKey("retailer", ref.FilesSHA256)
			f.put(key, append(f.get(key), '\n'))
		}, "files_mismatch"},
		{"file object that does not match its hash", func(f *fixture, ref manifest.BuildRef) {
			var m manifest.FileManifest
			json.Unmarshal(f.fileManifest("retailer", ref.FilesSHA256), &m)
			for _, e := range m.Files {
				if e.Name == "main.js" {
					obj := []byte("alert('pwned')")
					if e.Encoding == manifest.EncodingBrotli {
						obj = brotliBytes(t, obj)
					}
					f.put(manifest.FileKey("retailer", e.SHA256, e.Encoding), obj)
				}
			}
		}, "files_mismatch"},
		{"Brotli form longer than its size", func(f *fixture, ref manifest.BuildRef) {
			var m manifest.FileManifest
			json.Unmarshal(f.fileManifest("retailer", ref.FilesSHA256), &m)
			for _, e := range m.Files {
				if e.Encoding == manifest.EncodingBrotli {
					// The content, then 16 MiB more: read up to size+1 bytes only.
					content := ionicTree(20)[e.Name] + strings.Repeat("\x00", 16<<20)
					f.put(manifest.FileKey("retailer", e.SHA256, e.Encoding), brotliBytes(t, []byte(content)))
					return
				}
			}
			t.Fatal("no file is stored Brotli-compressed")
		}, "files_mismatch"},
		{"manifest whose digest is not the signed one", func(f *fixture, ref manifest.BuildRef) {
			// A manifest listing other content, stored under its own
			// digest, with the signed build naming the original: a
			// pointer to it is what a writer without the key can make.
			other := mustJSON(t, manifest.FileManifest{App: "retailer", Files: []manifest.FileEntry{{Name: "index.html", SHA256: sha256Hex([]byte("x")), Size: 1}}})
			f.put(manifest.FileManifestKey("retailer", sha256Hex(other)), other)
			f.put(manifest.FileManifestKey("retailer", ref.FilesSHA256), other)
		}, "files_mismatch"},
		{"missing file object", func(f *fixture, ref manifest.BuildRef) {
			var m manifest.FileManifest
			json.Unmarshal(f.fileManifest("retailer", ref.FilesSHA256), &m)
			e := m.Files[0]
			if err := f.store.Delete(t.Context(), manifest.FileKey("retailer", e.SHA256, e.Encoding)); err != nil {
				t.Fatal(err)
			}
		}, "missing"},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := newFixture(t)
			tree := ionicTree(20)
			ref := f.publishFiles("retailer", "production", "1.0.0", tree)
			c.breakf(f, ref)
			base, _ := startCDN(t, f)
			var logs logBuffer
			cfg := f.config(t)
			cfg.CDN, cfg.Log = base, cfg.Log.Output(&logs)
			_, tracker := startServer(t, cfg)
			d := &pluginDevice{t: t, id: deviceA, plugin: "8.51.14", platform: "android", version: "builtin"}
			ans := d.check(tracker + "/capgo/retailer/updates")
			if _, has := ans["manifest"]; has || ans["checksum"] != ref.SHA256 {
				t.Fatalf("answer %.300s, want the zip and no manifest", mustJSON(t, ans))
			}
			sameTree(t, d.applyZip(ans["url"].(string), ans["checksum"].(string), false), treeBytes(tree))
			if !strings.Contains(logs.String(), c.log) || !strings.Contains(logs.String(), "file manifest is not served") {
				t.Errorf("log does not say why (%s): %s", c.log, logs.String())
			}
		})
	}
}

// TestDeltaRecheck: a build whose files failed verification is
// served with its file manifest once they are repaired, after the recheck
// interval; a verified set is not read again.
func TestDeltaRecheck(t *testing.T) {
	f := newFixture(t)
	tree := ionicTree(5)
	ref := f.publishFiles("retailer", "production", "1.0.0", tree)
	var m manifest.FileManifest
	json.Unmarshal(f.fileManifest("retailer", ref.FilesSHA256), &m)
	e := m.Files[1]
	key := manifest.FileKey("retailer", e.SHA256, e.Encoding)
	good := f.get(key)
	f.put(key, []byte("broken"))
	base, _ := startCDN(t, f)
	now := time.Now()
	var clock = func() time.Time { return now }
	cfg := f.config(t)
	cfg.CDN, cfg.Now = base, func() time.Time { return clock() }
	_, tracker := startServer(t, cfg)
	d := &pluginDevice{t: t, id: deviceA, plugin: "8.51.14", platform: "android", version: "builtin"}
	if _, has := d.check(tracker + "/capgo/retailer/updates")["manifest"]; has {
		t.Fatal("manifest served with a broken file object")
	}
	f.put(key, good)
	if _, has := d.check(tracker + "/capgo/retailer/updates")["manifest"]; has {
		t.Fatal("verdict not kept for the recheck interval")
	}
	clock = func() time.Time { return now.Add(deltaRecheck + time.Second) }
	if _, has := d.check(tracker + "/capgo/retailer/updates")["manifest"]; !has {
		t.Fatal("manifest not served after the files were repaired")
	}
	// Verified once, the set is not read again.
	f.put(key, []byte("broken again"))
	clock = func() time.Time { return now.Add(3*deltaRecheck + time.Second) }
	if _, has := d.check(tracker + "/capgo/retailer/updates")["manifest"]; !has {
		t.Fatal("a verified set was read again")
	}
}

// TestDeltaPlainManifest: a file manifest stored as its bytes, as stores
// written before manifests were gzip-compressed hold them, is served as
// one stored in its gzip form.
func TestDeltaPlainManifest(t *testing.T) {
	f := newFixture(t)
	ref := f.publishFiles("retailer", "production", "1.0.0", ionicTree(5))
	key := manifest.FileManifestKey("retailer", ref.FilesSHA256)
	if stored := f.get(key); !bytes.HasPrefix(stored, []byte{0x1f, 0x8b}) {
		t.Fatal("the fixture's file manifest is not stored in its gzip form")
	}
	plain := f.fileManifest("retailer", ref.FilesSHA256)
	f.put(key, plain)
	base, _ := startCDN(t, f)
	cfg := f.config(t)
	cfg.CDN = base
	_, tracker := startServer(t, cfg)
	d := &pluginDevice{t: t, id: deviceA, plugin: "8.51.14", platform: "android", version: "builtin"}
	if _, has := d.check(tracker + "/capgo/retailer/updates")["manifest"]; !has {
		t.Fatal("a file manifest stored as its bytes is not served")
	}
	_, body := do(t, nil, "GET", tracker+"/build/files?id="+ref.ID, nil)
	if got := decode[map[string]string](t, body)["manifest"]; got != string(plain) {
		t.Fatalf("/build/files manifest %.100q, want the stored bytes", got)
	}
}

// TestDeltaWithoutCDN: a tracker that serves bundles itself has no URL to
// give file objects, so every plugin gets the zip.
func TestDeltaWithoutCDN(t *testing.T) {
	f := newFixture(t)
	ref := f.publishFiles("retailer", "production", "1.0.0", ionicTree(3))
	_, tracker := startServer(t, f.config(t))
	d := &pluginDevice{t: t, id: deviceA, plugin: "8.51.14", platform: "ios", version: "builtin"}
	ans := d.check(tracker + "/capgo/retailer/updates")
	if _, has := ans["manifest"]; has || ans["checksum"] != ref.SHA256 {
		t.Fatalf("answer %.300s, want the zip", mustJSON(t, ans))
	}
}

func unzip(t testing.TB, data []byte) map[string][]byte {
	t.Helper()
	zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatalf("unzip_fail: %v", err)
	}
	out := map[string][]byte{}
	for _, zf := range zr.File {
		if strings.HasSuffix(zf.Name, "/") {
			continue // a folder entry: unzipping creates the folder, not a file
		}
		rc, err := zf.Open()
		if err != nil {
			t.Fatal(err)
		}
		out[zf.Name], err = io.ReadAll(rc)
		rc.Close()
		if err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// TestDeltaGzipAnswer: the gzip answer, made around precompressed entries,
// decodes (CRC-32 and length checked) to exactly the plain answer.
func TestDeltaGzipAnswer(t *testing.T) {
	_, _, _, _, updates, _ := deltaSetup(t, 40)
	body := mustJSON(t, pluginRequest(deviceA, "1.0.0", "1.0.0"))
	_, plain := do(t, nil, "POST", updates, body, "Accept-Encoding", "identity")
	resp, zipped := do(t, nil, "POST", updates, body, "Accept-Encoding", "br;q=1, gzip;q=0.8")
	if resp.Header.Get("Content-Encoding") != "gzip" || !strings.Contains(resp.Header.Get("Vary"), "Accept-Encoding") {
		t.Fatalf("headers %v, want a gzip answer", resp.Header)
	}
	zr, err := gzip.NewReader(bytes.NewReader(zipped))
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, plain) || !strings.Contains(string(plain), `"manifest":[{"file_name"`) {
		t.Fatalf("gzip answer decodes to %.200s, plain answer is %.200s", got, plain)
	}
	t.Logf("answer with a manifest of 42 files: %d bytes, %d with gzip", len(plain), len(zipped))
	if _, again := do(t, nil, "POST", updates, body, "Accept-Encoding", "gzip;q=0"); !bytes.Equal(again, plain) {
		t.Errorf("gzip;q=0 answered compressed")
	}
}

// TestFilesRoute serves the device client the stored file manifest of a
// build whose files verify, or the patch to it from the manifest the
// device has, and a 404 otherwise.
func TestFilesRoute(t *testing.T) {
	f, _, _, ref2, updates, _ := deltaSetup(t, 100)
	base := strings.TrimSuffix(updates, "/capgo/retailer/updates")
	resp, body := do(t, nil, "GET", base+"/build/files?id="+ref2.ID, nil)
	ans := decode[map[string]string](t, body)
	if resp.StatusCode != 200 || ans["manifest"] != string(f.fileManifest("retailer", ref2.FilesSHA256)) || !strings.HasSuffix(ans["files_url"], "/apps/retailer/files/") {
		t.Fatalf("files: %s %.300s", resp.Status, body)
	}

	// From the file manifest of build 1, the patch to build 2's; from an
	// unknown, a bad or its own digest, the whole manifest.
	infos, err := f.store.List(t.Context(), "apps/retailer/files/manifests/")
	if err != nil || len(infos) != 2 {
		t.Fatalf("manifests %v: %v", infos, err)
	}
	from := strings.TrimSuffix(strings.TrimPrefix(infos[0].Key, "apps/retailer/files/manifests/"), ".json")
	if from == ref2.FilesSHA256 {
		from = strings.TrimSuffix(strings.TrimPrefix(infos[1].Key, "apps/retailer/files/manifests/"), ".json")
	}
	baseManifest := f.fileManifest("retailer", from)
	_, body = do(t, nil, "GET", base+"/build/files?id="+ref2.ID+"&from="+from, nil)
	pans := decode[map[string]string](t, body)
	got, err := func() ([]byte, error) {
		_, got, err := manifest.ApplyFilesPatch(ref2, "retailer", baseManifest, []byte(pans["patch"]))
		return got, err
	}()
	if err != nil || string(got) != ans["manifest"] || pans["files_url"] != ans["files_url"] || len(pans["patch"]) > len(ans["manifest"])/4 {
		t.Fatalf("patch from build 1 (%d bytes, manifest %d): %v %.300s", len(pans["patch"]), len(ans["manifest"]), err, body)
	}
	for _, q := range []string{strings.Repeat("0", 64), "../x", ref2.FilesSHA256} {
		if _, body := do(t, nil, "GET", base+"/build/files?id="+ref2.ID+"&from="+url.QueryEscape(q), nil); decode[map[string]string](t, body)["manifest"] != ans["manifest"] {
			t.Errorf("from=%s: %.200s, want the whole manifest", q, body)
		}
	}

	old := f.publish("retailer", "production", "3.0.0") // no file manifest
	for id, status := range map[string]int{old.ID: 404, "retailer-99": 404, "bad id": 400} {
		if resp, body := do(t, nil, "GET", base+"/build/files?id="+url.QueryEscape(id), nil); resp.StatusCode != status {
			t.Errorf("%s: %s %s, want %d", id, resp.Status, body, status)
		}
	}
}

// TestDeltaPluginSimulationS3 is TestDeltaPluginSimulation with the store
// on a real S3 server (versitygw), behind a CDN that reads the bucket.
func TestDeltaPluginSimulationS3(t *testing.T) {
	ctx := t.Context()
	f := newFixture(t)
	srv := s3test.Start(t)
	srv.Setenv(t)
	u, err := url.Parse(srv.URL("delta"))
	if err != nil {
		t.Fatal(err)
	}
	st, err := s3.Open(ctx, u)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Put(ctx, manifest.ACLKey, bytes.NewReader(f.get(manifest.ACLKey)), store.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	v1, v2 := treePair(60)
	_, first := f.upload(st, "production", "1.0.0", v1)
	ref2, second := f.upload(st, "production", "2.0.0", v2)
	// The second upload wrote the new zip, the two changed files and the
	// file manifest; every other file object was there.
	if second.NewFiles != 2 || second.NewFileBytes*10 > first.NewFileBytes {
		t.Errorf("second upload wrote %d file objects, %d bytes of them (first: %d); want 2 files and under a tenth", second.NewFiles, second.NewFileBytes, first.NewFileBytes)
	}
	t.Logf("S3 uploads: first wrote %d bytes, the one-line change %d bytes (%d file objects, %d bytes of them)", first.NewBytes, second.NewBytes, second.NewFiles, second.NewFileBytes)
	cfg := f.config(t)
	cfg.Store, cfg.CDN = st, cdnOf(t, st)
	_, tracker := startServer(t, cfg)

	d := &pluginDevice{t: t, id: deviceA, plugin: "7.0.38", platform: "ios", version: "1.0.0", tree: treeBytes(v1)}
	entries, ok := d.check(tracker + "/capgo/retailer/updates")["manifest"].([]any)
	if !ok {
		t.Fatal("no manifest in the answer")
	}
	got, err := d.applyManifest(entries)
	if err != nil {
		t.Fatal(err)
	}
	sameTree(t, got, treeBytes(v2))
	t.Logf("delta from S3: %d bytes over HTTP, zip is %d bytes", d.bytes, ref2.Size)

	old := &pluginDevice{t: t, id: deviceB, plugin: "6.14.27", platform: "android", version: "1.0.0"}
	ans := old.check(tracker + "/capgo/retailer/updates")
	if _, has := ans["manifest"]; has || ans["checksum"] != ref2.CRC32 {
		t.Fatalf("old plugin's answer %.300s", mustJSON(t, ans))
	}
	sameTree(t, old.applyZip(ans["url"].(string), ans["checksum"].(string), true), treeBytes(v2))
}
