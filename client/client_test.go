// Package client_test runs the TypeScript client's tests from go test, so
// that one command runs the whole suite: the shared verifier vectors, the
// LiveUpdate service, and the end-to-end flow of a real deploy binary and
// tracker with the client in Node.
package client_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

func TestClient(t *testing.T) {
	npm, err := exec.LookPath("npm")
	if err != nil {
		t.Fatal("npm not found: the device client's tests need Node.js 20.19 or newer")
	}
	if _, err := os.Stat("node_modules/.package-lock.json"); err != nil {
		run(t, nil, npm, "ci", "--no-audit", "--no-fund")
	}
	bin := filepath.Join(t.TempDir(), "deploy")
	run(t, nil, "go", "build", "-o", bin, "../cmd/deploy")
	run(t, []string{"DEPLOY_BIN=" + bin}, npm, "test")
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
