package main

import (
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
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
func run(tb testing.TB, dir string, env []string, name string, args ...string) (time.Duration, int64) {
	cmd := exec.Command(name, args...)
	cmd.Dir, cmd.Env = dir, append(os.Environ(), env...)
	start := time.Now()
	out, err := cmd.CombinedOutput()
	d := time.Since(start)
	if err != nil {
		tb.Fatalf("%s: %v\n%s", name, err, out)
	}
	return d, cmd.ProcessState.SysUsage().(*syscall.Rusage).Maxrss * 1024
}

// BenchmarkUploadVsZip times `deploy upload` of an Ionic-shaped tree to a
// fresh local store, end to end (process start, zip, hash, sign, store),
// against `zip -r -6 -X` of the same tree in the same run, and reports the
// ratio deploy/zip (below 1 is faster than zip).
func BenchmarkUploadVsZip(b *testing.B) {
	if _, err := exec.LookPath("zip"); err != nil {
		b.Fatal("zip is not installed (apt-get install zip)")
	}
	bin := buildDeploy(b)
	tree, work := b.TempDir(), b.TempDir()
	ionicTree(b, tree)
	env := []string{"HOME=" + work, "CI=true"}
	var deploy, zip time.Duration
	b.ResetTimer()
	for i := range b.N {
		d, _ := run(b, tree, env, bin, "upload", "app=bench", "dir=.", fmt.Sprintf("store=file://%s/store-%d", work, i))
		z, _ := run(b, tree, nil, "zip", "-q", "-r", "-6", "-X", fmt.Sprintf("%s/out-%d.zip", work, i), ".")
		deploy += d
		zip += z
	}
	b.ReportMetric(float64(deploy)/float64(zip), "deploy/zip")
	b.ReportMetric(float64(deploy.Milliseconds())/float64(b.N), "deploy-ms/op")
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
		d, rss := run(b, tree, env, bin, "upload", "app=bench", "dir=.", fmt.Sprintf("store=file://%s/store-%d", work, i))
		total += d
		peak = max(peak, rss)
		os.RemoveAll(fmt.Sprintf("%s/store-%d", work, i))
	}
	b.ReportMetric(float64(203*b.N)/total.Seconds(), "MB/s")
	b.ReportMetric(float64(peak)/(1<<20), "peak-RSS-MB")
}

// TestUploadMemoryIsBounded checks that a 200 MB upload streams: the whole
// process stays under 64 MB of resident memory.
func TestUploadMemoryIsBounded(t *testing.T) {
	bin := buildDeploy(t)
	tree, work := t.TempDir(), t.TempDir()
	bigTree(t, tree, 200)
	_, rss := run(t, tree, []string{"HOME=" + work, "CI=true"}, bin, "upload", "app=big", "dir=.", "store=file://"+work+"/store")
	if rss > 64<<20 {
		t.Fatalf("peak RSS %d MB uploading 200 MB, want at most 64 MB", rss>>20)
	}
	t.Logf("peak RSS %.1f MB", float64(rss)/(1<<20))
}
