package client_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cartona/deploy/manifest"
	"github.com/cartona/deploy/store/file"
	"github.com/cartona/deploy/tracker"
)

// TestReleaseThroughTheStore runs a release with the deploy binary on a
// folder store: upload to beta, promote, a staged rollout 10 → 50 %,
// pause, resume, 100 %, rollback, a build for newer native versions. After
// each step the TypeScript client, verifying the store's files as a
// device reading the CDN does, and a tracker on the same store, through
// both device APIs, give each device the expected build.
func TestReleaseThroughTheStore(t *testing.T) {
	run(t, nil, npmInstalled(t), "run", "build")
	dir := t.TempDir()
	bin := filepath.Join(dir, "deploy")
	run(t, nil, "go", "build", "-o", bin, "../cmd/deploy")
	storeDir := filepath.Join(dir, "store")
	env := []string{"HOME=" + filepath.Join(dir, "home"), "CI=true"}
	deploy := func(args ...string) string {
		t.Helper()
		cmd := exec.Command(bin, args...)
		cmd.Env = append(os.Environ(), env...)
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("deploy %s: %v\n%s", strings.Join(args, " "), err, err.(*exec.ExitError).Stderr)
		}
		return strings.TrimSpace(string(out))
	}
	rootKey := deploy("init", "store=file://"+storeDir, "root_key_file="+filepath.Join(dir, "root.key"))
	root, err := manifest.ParsePublicKey(rootKey)
	if err != nil {
		t.Fatal(err)
	}
	ci := deploy("keys", "generate", "key_file="+filepath.Join(dir, "ci.key"))
	deploy("grant", "username=ci", "app=retailer", "key="+ci, "store=file://"+storeDir, "root_key_file="+filepath.Join(dir, "root.key"))
	deploy("login", "username=ci", "store=file://"+storeDir, "root_key="+rootKey, "key_file="+filepath.Join(dir, "ci.key"))
	for _, v := range []string{"1", "2", "3", "4"} {
		os.MkdirAll(filepath.Join(dir, "www"+v), 0o755)
		os.WriteFile(filepath.Join(dir, "www"+v, "index.html"), []byte("v"+v+" notifyAppReady"), 0o644)
	}
	st, err := file.Open(storeDir)
	if err != nil {
		t.Fatal(err)
	}
	base, _ := serveStore(t, st, root, tracker.HaltPolicy{})

	// Devices on both sides of each rollout's cohort (rollout id b<build>-s<sequence>).
	in10, in50, out := cohort(t, "b2-s2", 0, 10), cohort(t, "b2-s2", 10, 50), cohort(t, "b2-s2", 50, 100)
	in30, out30 := cohort(t, "b4-s9", 0, 30), cohort(t, "b4-s9", 30, 100)
	const v1, v2, v3, v4 = "0.0.0-build.1", "0.0.0-build.2", "0.0.0-build.3", "0.0.0-build.4"
	prod := func(device, native, want string) check {
		return check{ask{"retailer", "production", device, native}, want}
	}
	steps := []struct {
		args   []string
		checks []check
	}{
		{[]string{"upload", "dir=www1", "channel=beta"}, []check{{ask{"retailer", "beta", out, "1.0"}, v1}}},
		{[]string{"channel", "create", "channel=production", "from=beta"}, []check{prod(in10, "1.0", v1), prod(out, "1.0", v1)}},
		{[]string{"upload", "dir=www2", "rollout=10"}, []check{prod(in10, "1.0", v2), prod(in50, "1.0", v1), prod(out, "1.0", v1)}},
		{[]string{"rollout", "percent=50"}, []check{prod(in10, "1.0", v2), prod(in50, "1.0", v2), prod(out, "1.0", v1)}},
		{[]string{"rollout", "pause"}, []check{prod(in10, "1.0", v1), prod(in50, "1.0", v1)}},
		{[]string{"rollout", "resume"}, []check{prod(in10, "1.0", v2), prod(out, "1.0", v1)}},
		{[]string{"rollout", "percent=100"}, []check{prod(in10, "1.0", v2), prod(out, "1.0", v2)}},
		{[]string{"rollback"}, []check{prod(in10, "1.0", v1), prod(out, "1.0", v1)}},
		{[]string{"upload", "dir=www3", "min_native=2.0"}, []check{prod(out, "1.5", v1), prod(out, "2.0.1", v3), prod(out, "2.0.0-beta.1", v1)}},
		{[]string{"upload", "dir=www4", "min_native=2.0", "rollout=30"}, []check{prod(in30, "2.1", v4), prod(out30, "2.1", v3), prod(in30, "1.0", v1)}},
	}
	for _, step := range steps {
		args := append(append([]string{}, step.args...), "app=retailer")
		for i, a := range args {
			if d, ok := strings.CutPrefix(a, "dir="); ok {
				args[i] = "dir=" + filepath.Join(dir, d)
			}
		}
		deploy(args...)
		var asks []ask
		for _, c := range step.checks {
			asks = append(asks, c.ask)
		}
		for i, sel := range clientSelect(t, storeDir, root, asks) {
			c := step.checks[i]
			if sel.Version != c.want {
				t.Fatalf("after deploy %s: the client selects %q for %s on native %s (%s), want %q", step.args[0], sel.Version, c.Device, c.Native, c.Channel, c.want)
			}
			if seed, capgo := trackerOffers(t, base, c.ask); seed != c.want || capgo != c.want {
				t.Fatalf("after deploy %s: the tracker offers %s on native %s (%s) %q through /build/latest and %q through the update endpoint, want %q",
					step.args[0], c.Device, c.Native, c.Channel, seed, capgo, c.want)
			}
		}
	}
	if h := deploy("history", "app=retailer"); !strings.Contains(h, "chain OK: 9 pointers") {
		t.Errorf("history:\n%s", h)
	}
}

// check is an ask and the version of the build it must get.
type check struct {
	ask
	want string
}

// cohort returns a device whose bucket in rollout of retailer production
// is from low to below high percent.
func cohort(t *testing.T, rollout string, low, high int64) string {
	for i := range 100000 {
		d := fmt.Sprintf("device-%d", i)
		if b := manifest.Cohort("retailer", "production", rollout, d); b >= low*100 && b < high*100 {
			return d
		}
	}
	t.Fatalf("no device in %d-%d %% of rollout %s", low, high, rollout)
	return ""
}

// trackerOffers returns the version a tracker offers for an ask through the
// seed's API and the Capgo plugin's update endpoint, after the manifest
// cache expired.
func trackerOffers(t *testing.T, base string, a ask) (seed, capgo string) {
	t.Helper()
	time.Sleep(5 * time.Millisecond) // past the 1 ms cache
	q := url.Values{"app": {a.App}, "channel": {a.Channel}, "device": {a.Device}, "native": {a.Native}}
	resp, err := http.Get(base + "/build/latest?" + q.Encode())
	if err != nil {
		t.Fatal(err)
	}
	var s struct{ Build *struct{ Build string } }
	json.NewDecoder(resp.Body).Decode(&s)
	resp.Body.Close()
	if s.Build != nil {
		seed = s.Build.Build
	}
	var c struct{ Version string }
	body, _ := json.Marshal(map[string]any{"device_id": a.Device, "version_name": "builtin", "version_build": a.Native, "defaultChannel": a.Channel})
	resp, err = http.Post(base+"/capgo/"+a.App+"/updates", "application/json", strings.NewReader(string(body)))
	if err != nil {
		t.Fatal(err)
	}
	json.NewDecoder(resp.Body).Decode(&c)
	resp.Body.Close()
	return seed, c.Version
}
