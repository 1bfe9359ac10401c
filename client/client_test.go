// Package client_test runs the TypeScript client's tests from go test, so
// that one command runs the whole suite: the shared verifier vectors, the
// LiveUpdate service, and the end-to-end flow of a real deploy binary and
// tracker with the client in Node; and the vectors again in a headless
// Chromium.
package client_test

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestClient(t *testing.T) {
	npm := npmInstalled(t)
	bin := filepath.Join(t.TempDir(), "deploy")
	run(t, nil, "go", "build", "-o", bin, "../cmd/deploy")
	run(t, []string{"DEPLOY_BIN=" + bin}, npm, "test")
	checkPack(t, npm)
}

// npmInstalled returns the path of npm once the client's dependencies are
// installed.
func npmInstalled(t *testing.T) string {
	t.Helper()
	npm, err := exec.LookPath("npm")
	if err != nil {
		t.Fatal("npm not found: the device client's tests need Node.js 20.19 or newer")
	}
	if _, err := os.Stat("node_modules/.package-lock.json"); err != nil {
		run(t, nil, npm, "ci", "--no-audit", "--no-fund")
	}
	return npm
}

// checkPack checks what `npm publish` would publish: the compiled module,
// its types, the README and the license, and nothing else. It runs after
// npm test, which compiles dist/.
func checkPack(t *testing.T, npm string) {
	cmd := exec.Command(npm, "pack", "--dry-run", "--json", "--ignore-scripts")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("npm pack --dry-run: %v", err)
	}
	var packed []struct {
		Files []struct{ Path string }
	}
	if err := json.Unmarshal(out, &packed); err != nil || len(packed) != 1 {
		t.Fatalf("npm pack --dry-run --json: %v\n%s", err, out)
	}
	var files []string
	for _, f := range packed[0].Files {
		files = append(files, f.Path)
	}
	for _, want := range []string{"package.json", "README.md", "LICENSE", "dist/index.js", "dist/index.d.ts", "dist/verify.js", "dist/live-update.js"} {
		if !slices.Contains(files, want) {
			t.Errorf("the package lacks %s: %v", want, files)
		}
	}
	for _, f := range files {
		if !slices.Contains([]string{"package.json", "README.md", "LICENSE"}, f) && !strings.HasPrefix(f, "dist/") {
			t.Errorf("the package would publish %s", f)
		}
	}
	// The package imports itself by name through its exports map, as an
	// app would.
	imp := exec.Command("node", "--input-type=module", "-e",
		`import * as m from '@cartona/deploy-client'; for (const n of ['verifyLatest', 'LiveUpdate', 'DeviceState']) if (typeof m[n] !== 'function') { console.error('missing export ' + n); process.exit(1) }`)
	if out, err := imp.CombinedOutput(); err != nil {
		t.Errorf("import '@cartona/deploy-client': %v\n%s", err, out)
	}
	license, _ := os.ReadFile("LICENSE")
	if root, _ := os.ReadFile("../LICENSE"); !bytes.Equal(license, root) {
		t.Error("client/LICENSE differs from the repository's LICENSE")
	}
}

// run runs a command in this folder with extra environment, failing the
// test with its output if it fails.
func run(t *testing.T, env []string, name string, args ...string) {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %v: %v\n%s", name, args, err, out)
	}
	t.Logf("%s %v:\n%s", name, args, out)
}
