package cli

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
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
