package cli_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cartona/deploy/cli"
	"github.com/cartona/deploy/manifest"
	"github.com/cartona/deploy/store"
)

// deploy runs the CLI in-process and returns its stdout and stderr.
func deploy(t *testing.T, args ...string) (string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	if code := cli.Execute(context.Background(), "v0.0.0-test", args, cli.IO{In: strings.NewReader(""), Out: &out, Err: &errOut}); code != 0 {
		t.Fatalf("deploy %s: exit %d\n%s", strings.Join(args, " "), code, errOut.String())
	}
	return out.String(), errOut.String()
}

func TestListBuildsSkipsAnOversizedRecord(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("HOME", filepath.Join(dir, "home"))
	t.Setenv("USER", "tester")
	t.Setenv("CI", "true")
	www := filepath.Join(dir, "www")
	if err := os.MkdirAll(www, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(www, "index.html"), []byte("<html>notifyAppReady"), 0o644); err != nil {
		t.Fatal(err)
	}
	storeURL := "file://" + filepath.Join(dir, "store")
	deploy(t, "upload", "app=demo", "dir="+www, "store="+storeURL)
	st, err := cli.OpenStore(context.Background(), storeURL)
	if err != nil {
		t.Fatal(err)
	}
	big := strings.Repeat("x", manifest.MaxBuildSize+1)
	if _, err := st.Put(context.Background(), manifest.BuildKey("demo", 2), strings.NewReader(big), store.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	out, errOut := deploy(t, "list", "builds", "app=demo", "store="+storeURL, "--json")
	var rows []struct {
		Number int64 `json:"number"`
	}
	if err := json.Unmarshal([]byte(out), &rows); err != nil {
		t.Fatalf("list builds --json: %v\n%s", err, out)
	}
	if len(rows) != 1 || rows[0].Number != 1 {
		t.Fatalf("list builds = %s, want build 1 alone", out)
	}
	if !strings.Contains(errOut, "warning: skipping") || !strings.Contains(errOut, "builds/2.json") {
		t.Fatalf("stderr %q, want a warning naming builds/2.json", errOut)
	}
}
