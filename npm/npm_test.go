package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

const testVersion = "1.2.3-test"

// host is the platform this test runs on.
func host(t *testing.T) platform {
	t.Helper()
	i := slices.IndexFunc(platforms, func(p platform) bool { return p.goos == runtime.GOOS && p.goarch == runtime.GOARCH })
	if i < 0 {
		t.Fatalf("no npm package for %s/%s", runtime.GOOS, runtime.GOARCH)
	}
	return platforms[i]
}

// writeDist writes a goreleaser-like dist folder (artifacts.json,
// metadata.json) holding bin as the binary of p, and returns its path.
func writeDist(t *testing.T, p platform, bin []byte) string {
	t.Helper()
	root := t.TempDir()
	rel := filepath.Join("dist", "deploy_"+p.goos+"_"+p.goarch, p.exe())
	if err := os.MkdirAll(filepath.Join(root, filepath.Dir(rel)), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, rel), bin, 0o755); err != nil {
		t.Fatal(err)
	}
	artifacts := fmt.Sprintf(`[{"name":%q,"path":%q,"goos":%q,"goarch":%q,"type":"Binary"},
		{"name":"checksums.txt","path":"dist/checksums.txt","type":"Checksum"}]`, p.exe(), rel, p.goos, p.goarch)
	dist := filepath.Join(root, "dist")
	for name, data := range map[string]string{"artifacts.json": artifacts, "metadata.json": `{"version":"` + testVersion + `"}`} {
		if err := os.WriteFile(filepath.Join(dist, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dist
}

func readManifest(t *testing.T, dir string) manifest {
	t.Helper()
	var m manifest
	if err := readJSON(filepath.Join(dir, "package.json"), &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// TestBuild checks the packages' fields, and that a release build refuses
// a dist folder that lacks a platform.
func TestBuild(t *testing.T) {
	p := host(t)
	dist := writeDist(t, p, []byte("the binary"))
	out := filepath.Join(t.TempDir(), "npm")
	o := options{dist: dist, out: out, license: "../LICENSE"}
	if _, err := build(o); err == nil || !strings.Contains(err.Error(), "has no binary for") {
		t.Fatalf("build without every platform: %v, want an error naming the missing one", err)
	}
	if _, err := build(options{dist: t.TempDir(), out: out, license: "../LICENSE"}); err == nil || !strings.Contains(err.Error(), "run goreleaser first") {
		t.Fatalf("build of an empty dist: %v", err)
	}

	o.partial = true
	dirs, err := build(o)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{filepath.Join(out, p.name()), filepath.Join(out, "deploy-cli")}; !slices.Equal(dirs, want) {
		t.Fatalf("build = %v, want %v (platform packages first)", dirs, want)
	}
	main := readManifest(t, dirs[1])
	if main.Name != "@cartona/deploy-cli" || main.Version != testVersion || main.Bin["deploy"] != "bin/deploy.js" || main.License != "Apache-2.0" {
		t.Fatalf("main package.json: %+v", main)
	}
	if len(main.OptionalDependencies) != 6 {
		t.Fatalf("optionalDependencies = %v, want the 6 platforms", main.OptionalDependencies)
	}
	for _, q := range platforms {
		if v := main.OptionalDependencies["@cartona/"+q.name()]; v != testVersion {
			t.Errorf("optionalDependencies[%s] = %q, want %s", q.name(), v, testVersion)
		}
	}
	plat := readManifest(t, dirs[0])
	if !slices.Equal(plat.OS, []string{p.os}) || !slices.Equal(plat.CPU, []string{p.cpu}) || plat.Version != testVersion || plat.License != "Apache-2.0" {
		t.Fatalf("platform package.json: %+v", plat)
	}
	bin := filepath.Join(dirs[0], "bin", p.exe())
	if data, err := os.ReadFile(bin); err != nil || string(data) != "the binary" {
		t.Fatalf("%s: %q, %v", bin, data, err)
	}
	license, _ := os.ReadFile("../LICENSE")
	for _, d := range dirs {
		if data, _ := os.ReadFile(filepath.Join(d, "LICENSE")); !bytes.Equal(data, license) {
			t.Errorf("%s/LICENSE differs from the repository's", d)
		}
	}
}

// npmRun runs commands with HOME, the XDG folders and npm's cache in
// temporary folders, npm offline: nothing comes from the registry.
type npmRun struct {
	t   *testing.T
	env []string
}

func newNPMRun(t *testing.T) *npmRun {
	if _, err := exec.LookPath("npm"); err != nil {
		t.Fatal("npm not found: the npm package tests need Node.js 20.19 or newer (apt-get install nodejs npm)")
	}
	tmp := t.TempDir()
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "DEPLOY_") && !strings.HasPrefix(strings.ToLower(kv), "npm_config_") && !strings.HasPrefix(kv, "XDG_") {
			env = append(env, kv)
		}
	}
	env = append(env,
		"HOME="+filepath.Join(tmp, "home"),
		"XDG_CONFIG_HOME="+filepath.Join(tmp, "config"),
		"XDG_DATA_HOME="+filepath.Join(tmp, "data"),
		"XDG_CACHE_HOME="+filepath.Join(tmp, "cache"),
		"npm_config_cache="+filepath.Join(tmp, "npm-cache"),
		"npm_config_offline=true",
		"npm_config_audit=false",
		"npm_config_fund=false",
		"npm_config_update_notifier=false",
		"USER=tester",
		"CI=true",
	)
	return &npmRun{t: t, env: env}
}

// run runs name in dir and returns its stdout, stderr and exit code.
func (r *npmRun) run(dir, name string, args ...string) (stdout, stderr string, code int) {
	r.t.Helper()
	cmd := r.command(dir, name, args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		r.t.Fatalf("%s %v: %v", name, args, err)
	}
	return out.String(), errb.String(), cmd.ProcessState.ExitCode()
}

// ok runs name in dir, failing the test unless it exits 0, and returns its
// stdout.
func (r *npmRun) ok(dir, name string, args ...string) string {
	r.t.Helper()
	out, errs, code := r.run(dir, name, args...)
	if code != 0 {
		r.t.Fatalf("%s %v: exit %d\n%s%s", name, args, code, out, errs)
	}
	return out
}

func (r *npmRun) command(dir, name string, args ...string) *exec.Cmd {
	cmd := exec.Command(name, args...)
	cmd.Dir, cmd.Env = dir, r.env
	return cmd
}

// pack builds the host binary as a release would, generates the packages
// and packs them, returning the tarballs of the main and the host package.
func pack(t *testing.T, r *npmRun) (mainTgz, hostTgz string) {
	p := host(t)
	tmp := t.TempDir()
	bin := filepath.Join(tmp, "deploy")
	// Go's own caches stay where they are: HOME in r.env is a fresh folder.
	gobuild := exec.Command("go", "build", "-ldflags", "-s -w -X main.version="+testVersion, "-o", bin, "./cmd/deploy")
	gobuild.Dir = ".."
	if out, err := gobuild.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	data, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	dirs, err := build(options{dist: writeDist(t, p, data), out: filepath.Join(tmp, "npm"), license: "../LICENSE", partial: true})
	if err != nil {
		t.Fatal(err)
	}
	tgz := filepath.Join(tmp, "tgz")
	if err := os.Mkdir(tgz, 0o755); err != nil {
		t.Fatal(err)
	}
	var files []string
	for _, d := range dirs {
		var packed []struct{ Filename string }
		if err := json.Unmarshal([]byte(r.ok(tmp, "npm", "pack", "--json", "--pack-destination", tgz, d)), &packed); err != nil || len(packed) != 1 {
			t.Fatalf("npm pack %s: %v %v", d, packed, err)
		}
		files = append(files, filepath.Join(tgz, packed[0].Filename))
	}
	return files[1], files[0]
}

// TestInstall installs the packed packages as the seed's users do, into a
// project (npm install --save-dev, npx deploy) and globally (npm install -g),
// and runs a version, an upload of examples/www to the local store, a
// failing command and the tracker through the launcher.
func TestInstall(t *testing.T) {
	r := newNPMRun(t)
	mainTgz, hostTgz := pack(t, r)
	www, err := filepath.Abs("../examples/www")
	if err != nil {
		t.Fatal(err)
	}

	// The two tarballs are installed together: npm takes the host package
	// from its tarball, and skips the other platforms' optional packages,
	// which it cannot fetch offline.
	app := t.TempDir()
	if err := os.WriteFile(filepath.Join(app, "package.json"), []byte(`{"name": "app", "version": "1.0.0", "private": true}`), 0o644); err != nil {
		t.Fatal(err)
	}
	r.ok(app, "npm", "install", "--save-dev", mainTgz, hostTgz)
	var pkg struct{ DevDependencies map[string]string }
	if err := readJSON(filepath.Join(app, "package.json"), &pkg); err != nil || pkg.DevDependencies["@cartona/deploy-cli"] == "" {
		t.Fatalf("package.json devDependencies after npm install --save-dev: %v %v", pkg.DevDependencies, err)
	}
	if out := r.ok(app, "npx", "deploy", "version"); !strings.Contains(out, testVersion) {
		t.Fatalf("npx deploy version = %q, want %s", out, testVersion)
	}
	if out := r.ok(app, "npx", "deploy", "upload", "app=demo", "dir="+www); !strings.Contains(out, "published demo build 1") {
		t.Fatalf("npx deploy upload: %q", out)
	}
	latest := filepath.Join(envValue(r.env, "XDG_DATA_HOME"), "deploy", "store", "apps", "demo", "channels", "production", "latest.json")
	if _, err := os.Stat(latest); err != nil {
		t.Fatalf("after the upload: %v", err)
	}
	launcher := filepath.Join(app, "node_modules", ".bin", "deploy") // what package.json scripts run
	if out := r.ok(app, launcher, "verify", "app=demo"); !strings.HasPrefix(out, "OK demo production: build 1") {
		t.Fatalf("deploy verify (node_modules/.bin): %q", out)
	}

	t.Run("exit status", func(t *testing.T) { exitStatus(t, r, app) })
	t.Run("signals", func(t *testing.T) { signals(t, r, app) })

	global := filepath.Join(t.TempDir(), "prefix")
	r.ok(app, "npm", "install", "-g", "--prefix", global, mainTgz, hostTgz)
	deploy := filepath.Join(global, "bin", "deploy")
	if out := r.ok(app, deploy, "version"); !strings.Contains(out, testVersion) {
		t.Fatalf("deploy version (npm install -g) = %q, want %s", out, testVersion)
	}
	if out := r.ok(app, deploy, "list", "builds", "app=demo"); !regexp.MustCompile(`(?m)^1 +0\.0\.0-build\.1 +production `).MatchString(out) {
		t.Fatalf("deploy list builds (npm install -g): %q", out)
	}

	// Without the platform package, the launcher says what to do.
	if err := os.RemoveAll(filepath.Join(app, "node_modules", "@cartona", host(t).name())); err != nil {
		t.Fatal(err)
	}
	_, errs, code := r.run(app, "npx", "deploy", "version")
	if code != 1 || !strings.Contains(errs, "@cartona/"+host(t).name()+", the binary for this platform, is not installed") || !strings.Contains(errs, "--omit=optional") {
		t.Fatalf("npx deploy version without the platform package: exit %d\n%s", code, errs)
	}
}

// exitStatus checks that a failing command exits through npx with the
// binary's own status and message.
func exitStatus(t *testing.T, r *npmRun, app string) {
	bin := filepath.Join(app, "node_modules", "@cartona", host(t).name(), "bin", host(t).exe())
	args := []string{"upload", "app=demo", "dir=" + filepath.Join(app, "missing")}
	_, wantErr, want := r.run(app, bin, args...)
	_, gotErr, got := r.run(app, "npx", append([]string{"deploy"}, args...)...)
	if want == 0 || got != want || gotErr != wantErr {
		t.Fatalf("npx deploy %v: exit %d %q; the binary: exit %d %q", args, got, gotErr, want, wantErr)
	}
}

// signals runs the tracker through the launcher and stops it with SIGTERM
// sent to the launcher only: the tracker must get it, stop, and the
// launcher exit with its status.
func signals(t *testing.T, r *npmRun, app string) {
	root := strings.TrimSpace(r.ok(app, filepath.Join(app, "node_modules", ".bin", "deploy"), "keys", "show", "root=1"))
	addr := freeAddr(t)
	cmd := r.command(app, filepath.Join(app, "node_modules", ".bin", "deploy"), "serve", "addr="+addr, "root_key="+root)
	var errs bytes.Buffer
	cmd.Stderr = &errs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	url := "http://" + addr + "/healthz"
	if err := waitFor(func() error { return get(url) }); err != nil {
		cmd.Process.Kill()
		t.Fatalf("tracker: %v\n%s", err, errs.String())
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("launcher after SIGTERM: %v\n%s", err, errs.String())
	}
	if err := get(url); err == nil {
		t.Fatalf("the tracker still answers after the launcher exited: SIGTERM was not passed on")
	}
	if runtime.GOOS == "linux" {
		killedChild(t, r.command(app, cmd.Path, cmd.Args[1:]...))
	}
}

// killedChild checks that when the binary dies of a signal, the launcher
// dies of the same one (Linux: the child is found through /proc).
func killedChild(t *testing.T, cmd *exec.Cmd) {
	var errs bytes.Buffer
	cmd.Stderr = &errs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	children := fmt.Sprintf("/proc/%d/task/%d/children", cmd.Process.Pid, cmd.Process.Pid)
	var child int
	err := waitFor(func() error {
		data, err := os.ReadFile(children)
		if err == nil {
			_, err = fmt.Sscan(string(data), &child)
		}
		return err
	})
	if err != nil {
		cmd.Process.Kill()
		t.Fatalf("the launcher's child: %v\n%s", err, errs.String())
	}
	if err := syscall.Kill(child, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus)
	if !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("launcher after its binary was killed: %v, want killed by SIGKILL", cmd.ProcessState)
	}
}

func get(url string) error {
	resp, err := (&http.Client{Timeout: time.Second}).Get(url)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return nil
}

func waitFor(f func() error) error {
	deadline := time.Now().Add(20 * time.Second)
	for {
		err := f()
		if err == nil || time.Now().After(deadline) {
			return err
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func freeAddr(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func envValue(env []string, key string) string {
	for _, kv := range slices.Backward(env) {
		if k, v, ok := strings.Cut(kv, "="); ok && k == key {
			return v
		}
	}
	return ""
}
