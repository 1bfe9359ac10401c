package main

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cartona/deploy/manifest"
	"github.com/cartona/deploy/publish"
)

// ionicTree writes a tree shaped like an Ionic build: about 1,500 files
// and 3 MB, mostly small svg and js files, a few 100-400 KB chunks, and one
// incompressible image.
func ionicTree(tb testing.TB, dir string) {
	r := rand.New(rand.NewPCG(1, 2))
	words := strings.Fields("const let function return import export from this props state render if else for while async await new class extends super null undefined true false ion-button ion-content ion-header div span svg path fill stroke viewBox width height document window console log error")
	text := func(n int) []byte {
		var b strings.Builder
		for b.Len() < n {
			b.WriteString(words[r.IntN(len(words))])
			b.WriteString([]string{" ", "(", ")", "{", "}", ";\n", ".", ","}[r.IntN(8)])
			if r.IntN(10) == 0 {
				fmt.Fprintf(&b, "_%x", r.Uint32())
			}
		}
		return []byte(b.String()[:n])
	}
	write := func(name string, data []byte) {
		p := filepath.Join(dir, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, data, 0o644); err != nil {
			tb.Fatal(err)
		}
	}
	write("index.html", []byte("<!doctype html><html><body><app-root></app-root><script src=main.js></script></body></html>"))
	write("main.js", append(text(300<<10), "CapacitorUpdater.notifyAppReady()"...))
	for i := range 4 {
		write(fmt.Sprintf("chunk-%d.js", i), text(100<<10+r.IntN(300<<10)))
	}
	for i := range 1100 {
		write(fmt.Sprintf("svg/ionicons-%04d.svg", i), text(200+r.IntN(1000)))
	}
	for i := range 390 {
		write(fmt.Sprintf("assets/%02d/chunk-%04d.js", i%20, i), text(300+r.IntN(1500)))
	}
	img := make([]byte, 150<<10)
	for i := range img {
		img[i] = byte(r.Uint32())
	}
	write("assets/splash.png", img)
}

// bigTree writes about mb megabytes of web build: 4 MB chunks of text and
// random bytes, and many small files.
func bigTree(tb testing.TB, dir string, mb int) {
	ionicTree(tb, dir)
	r := rand.New(rand.NewPCG(3, 4))
	chunk := make([]byte, 4<<20)
	for i := range mb / 4 {
		for j := range chunk {
			if i%2 == 0 {
				chunk[j] = byte(r.Uint32())
			} else {
				chunk[j] = "abcdefgh ;{}()\n"[r.IntN(15)]
			}
		}
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("media-%03d.bin", i)), chunk, 0o644); err != nil {
			tb.Fatal(err)
		}
	}
}

func buildDeploy(tb testing.TB) string {
	bin := filepath.Join(tb.TempDir(), "deploy")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		tb.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// run times one command, returning its wall time and peak RSS in bytes.
func run(tb testing.TB, dir string, env []string, name string, args ...string) usage {
	cmd := exec.Command(name, args...)
	cmd.Dir, cmd.Env = dir, append(os.Environ(), env...)
	start := time.Now()
	out, err := cmd.CombinedOutput()
	d := time.Since(start)
	if err != nil {
		tb.Fatalf("%s: %v\n%s", name, err, out)
	}
	ru := cmd.ProcessState.SysUsage().(*syscall.Rusage)
	return usage{wall: d, cpu: cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime(), rss: ru.Maxrss * 1024}
}

// usage is what a process took: wall-clock and CPU (user and system) time,
// and peak resident memory in bytes.
type usage struct {
	wall, cpu time.Duration
	rss       int64
}

// BenchmarkUploadVsZip times `deploy upload` of an Ionic-shaped tree to a
// fresh local store, end to end (process start, zip, hash, file objects,
// sign, store), against `zip -r -6 -X` of the same tree in the same run,
// and reports the ratio deploy/zip (below 1 is faster than zip); then
// the upload of a one-line change to the same store (incremental/zip).
// The tree is synced to disk before each timed run, as a build written
// earlier is: else the upload's barrier, which makes its objects durable,
// would also write out the tree the benchmark has just made.
func BenchmarkUploadVsZip(b *testing.B) {
	if _, err := exec.LookPath("zip"); err != nil {
		b.Fatal("zip is not installed (apt-get install zip)")
	}
	bin := buildDeploy(b)
	work := b.TempDir()
	env := []string{"HOME=" + work, "CI=true"}
	var deploy, incremental, zip, deployCPU, zipCPU time.Duration
	b.ResetTimer()
	for i := range b.N {
		b.StopTimer()
		tree := b.TempDir()
		ionicTree(b, tree)
		syscall.Sync()
		b.StartTimer()
		storeArg := fmt.Sprintf("store=file://%s/store-%d", work, i)
		d := run(b, tree, env, bin, "upload", "app=bench", "dir=.", storeArg)
		z := run(b, tree, nil, "zip", "-q", "-r", "-6", "-X", fmt.Sprintf("%s/out-%d.zip", work, i), ".")
		b.StopTimer()
		oneLineChange(b, tree)
		syscall.Sync()
		b.StartTimer()
		d2 := run(b, tree, env, bin, "upload", "app=bench", "dir=.", storeArg)
		deploy, incremental, zip = deploy+d.wall, incremental+d2.wall, zip+z.wall
		deployCPU, zipCPU = deployCPU+d.cpu, zipCPU+z.cpu
	}
	b.ReportMetric(float64(deploy)/float64(zip), "deploy/zip")
	// CPU time varies less than wall time with the file system's state.
	b.ReportMetric(float64(deployCPU)/float64(zipCPU), "deploy-cpu/zip-cpu")
	b.ReportMetric(float64(incremental)/float64(zip), "incremental/zip")
	b.ReportMetric(float64(deploy.Milliseconds())/float64(b.N), "deploy-ms/op")
	b.ReportMetric(float64(incremental.Milliseconds())/float64(b.N), "incremental-ms/op")
	b.ReportMetric(float64(zip.Milliseconds())/float64(b.N), "zip-ms/op")
}

// BenchmarkUploadLarge uploads a 200 MB tree to a fresh local store and
// reports zip+hash+store throughput and the peak RSS of the whole process.
func BenchmarkUploadLarge(b *testing.B) {
	bin := buildDeploy(b)
	tree, work := b.TempDir(), b.TempDir()
	bigTree(b, tree, 200)
	env := []string{"HOME=" + work, "CI=true"}
	var total time.Duration
	var peak int64
	b.ResetTimer()
	for i := range b.N {
		u := run(b, tree, env, bin, "upload", "app=bench", "dir=.", fmt.Sprintf("store=file://%s/store-%d", work, i))
		total += u.wall
		peak = max(peak, u.rss)
		os.RemoveAll(fmt.Sprintf("%s/store-%d", work, i))
	}
	b.ReportMetric(float64(203*b.N)/total.Seconds(), "MB/s")
	b.ReportMetric(float64(peak)/(1<<20), "peak-RSS-MB")
}

// TestUploadMemoryIsBounded checks that an upload streams: the whole
// process stays under 80 MB of resident memory, well below the tree, with
// 200 MB of large files and with 100 MB of small ones (whose bytes the zip
// keeps for the file objects, up to a budget). Measured on an idle machine:
// about 44 and 60 MB; a machine busy with other tests has been seen at 65.
func TestUploadMemoryIsBounded(t *testing.T) {
	bin := buildDeploy(t)
	for name, write := range map[string]func(tb testing.TB, dir string, mb int){"large files": bigTree, "small files": smallFilesTree} {
		t.Run(name, func(t *testing.T) {
			tree, work := t.TempDir(), t.TempDir()
			mb := map[string]int{"large files": 200, "small files": 100}[name]
			write(t, tree, mb)
			rss := run(t, tree, []string{"HOME=" + work, "CI=true"}, bin, "upload", "app=big", "dir=.", "store=file://"+work+"/store").rss
			if rss > 80<<20 {
				t.Fatalf("peak RSS %d MB uploading %d MB, want at most 80 MB", rss>>20, mb)
			}
			t.Logf("peak RSS %.1f MB", float64(rss)/(1<<20))
		})
	}
}

// smallFilesTree writes about mb megabytes of web build in files of 16 KiB,
// half of them incompressible.
func smallFilesTree(tb testing.TB, dir string, mb int) {
	ionicTree(tb, dir)
	r := rand.New(rand.NewPCG(5, 6))
	data := make([]byte, 16<<10)
	for i := range mb << 20 / len(data) {
		for j := range data {
			if i%2 == 0 {
				data[j] = byte(r.Uint32())
			} else {
				data[j] = "abcdefgh ;{}()\n"[r.IntN(15)]
			}
		}
		p := filepath.Join(dir, "media", fmt.Sprintf("%02d", i%64), fmt.Sprintf("m-%05d.js", i))
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, data, 0o644); err != nil {
			tb.Fatal(err)
		}
	}
}

// uploadJSON runs `deploy upload --json` and decodes its result.
func uploadJSON(tb testing.TB, bin, tree, storeURL string, env []string) publish.Result {
	cmd := exec.Command(bin, "upload", "app=bench", "dir=.", "store="+storeURL, "--json")
	cmd.Dir, cmd.Env = tree, append(os.Environ(), env...)
	out, err := cmd.Output()
	if err != nil {
		tb.Fatalf("deploy upload: %v\n%s", err, out)
	}
	var res publish.Result
	if err := json.Unmarshal(out, &res); err != nil {
		tb.Fatalf("deploy upload --json: %v\n%s", err, out)
	}
	return res
}

// oneLineChange edits one line of one lazy chunk of an Ionic-shaped tree,
// and index.html, which in a real build names the chunk's new hash.
func oneLineChange(tb testing.TB, tree string) {
	for _, name := range []string{"assets/03/chunk-0003.js", "index.html"} {
		p := filepath.Join(tree, name)
		data, err := os.ReadFile(p)
		if err != nil {
			tb.Fatal(err)
		}
		if err := os.WriteFile(p, append([]byte("console.log('one line changed');\n"), data...), 0o644); err != nil {
			tb.Fatal(err)
		}
	}
}

// fileManifest reads and checks the file manifest of the channel's build
// in a local store.
func fileManifest(tb testing.TB, storeDir string) (*manifest.FileManifest, []byte) {
	env, err := os.ReadFile(filepath.Join(storeDir, manifest.LatestKey("bench", "production")))
	if err != nil {
		tb.Fatal(err)
	}
	e, err := manifest.ParseEnvelope(env, manifest.TypeLatest, manifest.MaxLatestSize)
	if err != nil {
		tb.Fatal(err)
	}
	var l manifest.Latest
	if err := json.Unmarshal(e.Payload, &l); err != nil {
		tb.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(storeDir, manifest.FileManifestKey("bench", l.Build.FilesSHA256)))
	if err != nil {
		tb.Fatal(err)
	}
	m, data, err := manifest.ReadFileManifest(l.Build, "bench", data)
	if err != nil {
		tb.Fatal(err)
	}
	return m, data
}

// gzipSize is the size of data as an HTTP server sends it gzip-compressed.
func gzipSize(data []byte) int64 {
	var buf bytes.Buffer
	w, _ := gzip.NewWriterLevel(&buf, 6)
	w.Write(data)
	w.Close()
	return int64(buf.Len())
}

// BenchmarkDeltaBytes uploads an Ionic-shaped tree, then the same tree
// after a one-line change, and reports, against the full zip and the first
// upload measured in the same run:
//   - device/zip: what a device on v1 downloads to get v2 file by file (the
//     file manifest, gzip-compressed as a server sends JSON, and each file
//     it lacks, as stored: Brotli as is, otherwise gzip-compressed unless
//     already compressed) over the zip's size;
//   - patched/zip: the same for a device that holds v1's file manifest,
//     which fetches the patch from it instead of the whole manifest;
//     patched-stored-B the same bytes as stored, none compressed in
//     transit (a CDN that compresses nothing);
//   - upload2/upload1: the bytes the second upload wrote over the first's,
//     and files2/upload1 the same without the zip, which old plugins still
//     need whole.
func BenchmarkDeltaBytes(b *testing.B) {
	bin := buildDeploy(b)
	var device, patched, stored, zipSize, up1, up2, files2 int64
	for range b.N {
		tree, work := b.TempDir(), b.TempDir()
		ionicTree(b, tree)
		env := []string{"HOME=" + work, "CI=true"}
		storeDir := filepath.Join(work, "store")
		r1 := uploadJSON(b, bin, tree, "file://"+storeDir, env)
		m1, data1 := fileManifest(b, storeDir)
		oneLineChange(b, tree)
		r2 := uploadJSON(b, bin, tree, "file://"+storeDir, env)
		m2, data := fileManifest(b, storeDir)
		had := map[string]bool{}
		for _, e := range m1.Files {
			had[e.SHA256] = true
		}
		patch, err := os.ReadFile(filepath.Join(storeDir, manifest.FilesPatchKey("bench", sha256Hex(data1), sha256Hex(data))))
		if err != nil {
			b.Fatal(err)
		}
		var files int64 // the changed files, as sent
		for _, e := range m2.Files {
			if had[e.SHA256] {
				continue
			}
			obj, err := os.ReadFile(filepath.Join(storeDir, manifest.FileKey("bench", e.SHA256, e.Encoding)))
			if err != nil {
				b.Fatal(err)
			}
			if e.Encoding == "" {
				files += min(int64(len(obj)), gzipSize(obj))
			} else {
				files += int64(len(obj))
			}
			stored += int64(len(obj))
		}
		device += gzipSize(data) + files
		patched += gzipSize(patch) + files
		stored += int64(len(patch))
		zipSize += r2.Size
		up1, up2, files2 = up1+r1.NewBytes, up2+r2.NewBytes, files2+r2.NewFileBytes
	}
	b.ReportMetric(float64(device)/float64(zipSize), "device/zip")
	b.ReportMetric(float64(patched)/float64(zipSize), "patched/zip")
	b.ReportMetric(float64(patched)/float64(b.N), "patched-B/op")
	b.ReportMetric(float64(stored)/float64(b.N), "patched-stored-B/op")
	b.ReportMetric(float64(device)/float64(b.N), "device-B/op")
	b.ReportMetric(float64(zipSize)/float64(b.N), "zip-B/op")
	b.ReportMetric(float64(up2)/float64(up1), "upload2/upload1")
	b.ReportMetric(float64(files2)/float64(up1), "files2/upload1")
}

func sha256Hex(data []byte) string {
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}

// BenchmarkVerify times `deploy verify` of a channel whose build is an
// Ionic-shaped tree (1,500 files) in a local store, end to end: process
// start, ACL and latest.json, the zip, and the file manifest with every
// file object.
func BenchmarkVerify(b *testing.B) {
	bin := buildDeploy(b)
	tree, work := b.TempDir(), b.TempDir()
	ionicTree(b, tree)
	env := []string{"HOME=" + work, "CI=true"}
	storeArg := "store=file://" + filepath.Join(work, "store")
	run(b, tree, env, bin, "upload", "app=bench", "dir=.", storeArg)
	var total, cpu time.Duration
	b.ResetTimer()
	for range b.N {
		u := run(b, tree, env, bin, "verify", "app=bench", storeArg)
		total, cpu = total+u.wall, cpu+u.cpu
	}
	b.ReportMetric(float64(total.Microseconds())/1000/float64(b.N), "verify-ms/op")
	b.ReportMetric(float64(cpu.Microseconds())/1000/float64(b.N), "verify-cpu-ms/op")
}
