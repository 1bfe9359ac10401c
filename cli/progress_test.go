package cli

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/creack/pty"
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
	c := exec.Command(os.Args[0], "upload", "app=shop", "dir="+build, "store=file://"+t.TempDir())
	c.Env = append(os.Environ(), "DEPLOY_TEST_AS_MAIN=1")
	tty, err := pty.Start(c)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan []byte)
	go func() { b, _ := io.ReadAll(tty); done <- b }()
	timer := time.AfterFunc(30*time.Second, func() { c.Process.Kill() })
	err = c.Wait()
	timer.Stop()
	tty.Close()
	out := string(<-done)
	if err != nil {
		t.Fatalf("deploy upload on a terminal: %v\n%s", err, out)
	}
	for _, want := range []string{"zipping [", "uploading the bundle [", "uploading the files [" + strings.Repeat("=", 30) + "] 100% 202 files", "\r\033[Kpublished shop build 1"} {
		if !strings.Contains(out, want) {
			t.Errorf("the terminal shows no %q:\n%q", want, out)
		}
	}
}
