package cli

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cartona/deploy/publish"
)

// On a terminal, upload draws a bar for each long step, each reaching
// 100 %, and clears it before the result.
func TestUploadProgressOnATerminal(t *testing.T) {
	isolate(t)
	t.Setenv("CI", "")
	build := t.TempDir()
	files := map[string]string{"index.html": "<!doctype html>", "main.js": "CapacitorUpdater.notifyAppReady()"}
	for i := range 200 {
		files[fmt.Sprintf("svg/%03d.svg", i)] = fmt.Sprintf("<svg id=%d/>", i)
	}
	for name, body := range files {
		p := filepath.Join(build, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	out, err := onTerminal(t, nil, nil, "upload", "app=shop", "dir="+build, "store=file://"+t.TempDir())
	if err != nil {
		t.Fatalf("deploy upload on a terminal: %v\n%s", err, out)
	}
	for _, want := range []string{"zipping [", "uploading the bundle [", "uploading the files [" + strings.Repeat("=", 30) + "] 100% 202 files", "\r\033[Kpublished shop build 1"} {
		if !strings.Contains(out, want) {
			t.Errorf("the terminal shows no %q:\n%q", want, out)
		}
	}
}

// Off a terminal, as in CI, progress is plain lines on stderr: none for
// work done within the first seconds, then at most one every few seconds,
// and one when a step reported on ends.
func TestProgressLinesOffATerminal(t *testing.T) {
	var out strings.Builder
	p := newProgress(&out)
	clock := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	p.now = func() time.Time { return clock }
	const mb = 1 << 20
	zip := func(after time.Duration, done int64) {
		clock = clock.Add(after)
		p.update(publish.Progress{Step: "zipping", Done: done * mb, Total: 115 * mb})
	}
	zip(0, 0)
	zip(time.Second, 10)
	if out.Len() != 0 {
		t.Fatalf("within the first second, progress printed %q, want nothing", out.String())
	}
	zip(2*time.Second, 40) // 3 s
	zip(time.Second, 50)   // 4 s: too soon after the last line
	zip(5*time.Second, 90) // 9 s
	zip(time.Second, 115)  // the end of the step
	clock = clock.Add(time.Second)
	p.update(publish.Progress{Step: "uploading the files", Done: 1, Total: 202, Files: true}) // too soon
	clock = clock.Add(5 * time.Second)
	p.update(publish.Progress{Step: "uploading the files", Done: 101, Total: 202, Files: true})
	p.clear()
	want := "zipping: 40.0 MB of 115.0 MB (34%)\n" +
		"zipping: 90.0 MB of 115.0 MB (78%)\n" +
		"zipping: 115.0 MB of 115.0 MB (100%)\n" +
		"uploading the files: 101 of 202 files (50%)\n"
	if out.String() != want {
		t.Errorf("progress off a terminal printed\n%q\nwant\n%q", out.String(), want)
	}

	// Work done within the first seconds prints nothing at all.
	out.Reset()
	p = newProgress(&out)
	p.now = func() time.Time { return clock }
	zip(0, 0)
	zip(time.Second, 115)
	p.update(publish.Progress{Step: "uploading the bundle", Done: 115 * mb, Total: 115 * mb})
	if out.Len() != 0 {
		t.Errorf("a quick upload printed %q, want nothing", out.String())
	}
}
