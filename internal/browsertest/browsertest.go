// Package browsertest drives the dashboard in a real headless Chromium for
// tests: [Run] starts dashboard/web/test/run.mjs, which uses playwright-core
// from npm with Debian's chromium (the browser download of playwright is
// not used), and fails the test with the script's output if it fails.
//
// Chromium is found through $CHROMIUM, then chromium or chromium-browser on
// $PATH; install it with `apt-get install chromium`. The npm packages are
// installed with `npm ci` in dashboard/web on first use.
//
// Screenshots go to $DASHBOARD_ARTIFACTS when set (CI keeps them), else to
// the test's temporary folder.
package browsertest

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"time"
)

// webDir is dashboard/web, found from this file's place in the module.
func webDir(t testing.TB) string {
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		t.Fatal("browsertest: cannot find its own source file")
	}
	return filepath.Join(filepath.Dir(file), "..", "..", "dashboard", "web")
}

// Chromium returns the path of the chromium executable, failing the test
// with an install hint if there is none.
func Chromium(t testing.TB) string {
	if p := os.Getenv("CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Fatal("chromium not found: the dashboard's browser tests need it; install it with `apt-get install chromium` (or set CHROMIUM to its path)")
	return ""
}

var npmOnce sync.Once

// NPM installs dashboard/web's node modules if they are missing and
// returns the folder. Test binaries of several packages may run at once:
// a lock folder lets one of them run npm ci while the others wait.
func NPM(t testing.TB) string {
	dir := webDir(t)
	npmOnce.Do(func() {
		ready := func() bool {
			_, err := os.Stat(filepath.Join(dir, "node_modules", ".package-lock.json"))
			return err == nil
		}
		lock := filepath.Join(dir, ".npm-ci.lock")
		for deadline := time.Now().Add(5 * time.Minute); os.Mkdir(lock, 0o755) != nil; time.Sleep(200 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("%s has been held for 5 minutes; if no npm ci is running, remove it", lock)
			}
		}
		defer os.Remove(lock)
		if ready() {
			return
		}
		npm, err := exec.LookPath("npm")
		if err != nil {
			t.Fatal("npm not found: the dashboard's tests need Node.js 20.19 or newer")
		}
		cmd := exec.Command(npm, "ci", "--no-audit", "--no-fund")
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("npm ci in %s: %v\n%s", dir, err, out)
		}
	})
	return dir
}

// Artifacts returns the folder screenshots of the test go to.
func Artifacts(t testing.TB) string {
	dir := t.TempDir()
	if root := os.Getenv("DASHBOARD_ARTIFACTS"); root != "" {
		dir = filepath.Join(root, t.Name())
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// Run runs scenario of run.mjs against the dashboard at base (such as
// http://localhost:8080), with the token to sign in with and what the page
// must show (expect, written as JSON for the script). It returns the
// folder of the screenshots.
func Run(t testing.TB, scenario, base, token string, expect any) string {
	t.Helper()
	dir := NPM(t)
	chromium := Chromium(t)
	artifacts := Artifacts(t)
	data, err := json.MarshalIndent(expect, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	expectFile := filepath.Join(t.TempDir(), "expect.json")
	if err := os.WriteFile(expectFile, data, 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("node", filepath.Join("test", "run.mjs"), scenario)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "CHROMIUM="+chromium, "BASE_URL="+base, "STATS_TOKEN="+token,
		"EXPECT="+expectFile, "ARTIFACTS="+artifacts)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("browser test %s: %v\n%s\n(screenshots in %s)", scenario, err, out, artifacts)
	}
	t.Logf("browser test %s:\n%s(screenshots in %s)", scenario, out, artifacts)
	return artifacts
}
