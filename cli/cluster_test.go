package cli_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/cartona/deploy/cli"
	"github.com/cartona/deploy/internal/pgtest"
	"github.com/cartona/deploy/manifest"
	"github.com/cartona/deploy/tracker"
)

// cluster is a store with a published app and a PostgreSQL database that
// `deploy serve` processes share.
type cluster struct {
	dir, store, root, db string
}

// run runs deploy in-process and returns its stdout, trimmed.
func (c *cluster) run(t *testing.T, args ...string) string {
	t.Helper()
	var out, errb bytes.Buffer
	if code := cli.Execute(context.Background(), "v0.0.0-test", args, cli.IO{In: strings.NewReader(""), Out: &out, Err: &errb}); code != 0 {
		t.Fatalf("deploy %s: exit %d\n%s", strings.Join(args, " "), code, errb.String())
	}
	return strings.TrimSpace(out.String())
}

func newCluster(t *testing.T) *cluster {
	dir := t.TempDir()
	t.Setenv("HOME", filepath.Join(dir, "home"))
	t.Setenv("XDG_CONFIG_HOME", "")
	t.Setenv("XDG_DATA_HOME", "")
	t.Setenv("CI", "true")
	c := &cluster{dir: dir, store: "file://" + filepath.ToSlash(filepath.Join(dir, "store")), db: pgtest.Database(t)}
	c.root = c.run(t, "init", "store="+c.store, "root_key_file="+filepath.Join(dir, "root.key"))
	ci := c.run(t, "keys", "generate", "key_file="+filepath.Join(dir, "ci.key"))
	c.run(t, "grant", "username=ci", "app=demo", "can_upload=1", "key="+ci, "store="+c.store, "root_key_file="+filepath.Join(dir, "root.key"))
	c.upload(t, "1.0.0")
	return c
}

func (c *cluster) upload(t *testing.T, version string, args ...string) {
	www := filepath.Join(c.dir, "www-"+version)
	if err := os.MkdirAll(www, 0o755); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(www, "index.html"), []byte("<html>"+version+" notifyAppReady</html>"), 0o644)
	c.run(t, append([]string{"upload", "app=demo", "dir=" + www, "store=" + c.store, "root_key=" + c.root,
		"key_file=" + filepath.Join(c.dir, "ci.key"), "version=" + version}, args...)...)
}

// serve starts `deploy serve` as a process on a free port and returns it
// with its base URL, with args added to its own. It is killed at the end
// of the test.
func (c *cluster) serve(t *testing.T, args ...string) (*exec.Cmd, string) {
	t.Helper()
	cmd := exec.Command(os.Args[0], append([]string{"serve", "addr=127.0.0.1:0", "store=" + c.store, "root_key=" + c.root, "db=" + c.db,
		"stats_token=tok", "cache_ttl=10ms"}, args...)...)
	cmd.Env = append(os.Environ(), deployMainEnv+"=1")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			if _, a, ok := strings.Cut(sc.Text(), `"message":"listening on `); ok {
				addr <- strings.Fields(a)[0]
			}
		}
	}()
	select {
	case a := <-addr:
		return cmd, a
	case <-time.After(30 * time.Second):
		t.Fatal("deploy serve did not start")
	}
	return nil, ""
}

var client = &http.Client{Timeout: 10 * time.Second}

// post sends a body to a tracker and reports whether it answered 200.
func post(url string, body any) bool {
	data, _ := json.Marshal(body)
	resp, err := client.Post(url, "application/json", bytes.NewReader(data))
	if err != nil {
		return false
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode == 200
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := client.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

func pluginEvent(device, action, version string, ts int64) map[string]any {
	return map[string]any{"platform": "android", "device_id": device, "app_id": "com.cartona.demo", "version_build": "1.0.0",
		"version_name": version, "old_version_name": "builtin", "plugin_version": "8.51.14", "action": action, "timestamp": ts}
}

// TestTwoTrackersOnePostgres runs two `deploy serve` processes on one
// PostgreSQL database and sends each device's requests alternately to
// both. One is killed with SIGKILL while events are posted and restarted;
// every acknowledged event is then in the database, and after every
// device resent its events each counts exactly once through either
// tracker. A device blocked through one is blocked through the other (also
// by retries split between them), and a sequence one of them verified is a
// floor the other enforces.
func TestTwoTrackersOnePostgres(t *testing.T) {
	c := newCluster(t)
	cmdA, a := c.serve(t)
	_, b := c.serve(t)

	const devices, perDevice, perBatch = 37, 16, 3
	t0 := time.Now().UnixMilli()
	// batch j of device d holds events t0 + (j*devices+d)*perBatch + k.
	batch := func(d, j int) ([]any, []int64) {
		var evs []any
		var ts []int64
		for k := range perBatch {
			v := t0 + int64((j*devices+d)*perBatch+k)
			evs = append(evs, pluginEvent(fmt.Sprintf("device-%d", d), "download_fail", "1.0.0", v))
			ts = append(ts, v)
		}
		return evs, ts
	}
	var mu sync.Mutex
	acked := map[int64]bool{}
	var wg sync.WaitGroup
	for d := range devices {
		wg.Go(func() {
			for j := range perDevice {
				if d == 0 && j == perDevice/2 {
					cmdA.Process.Signal(os.Kill) // midway through, while the others post
				}
				evs, ts := batch(d, j)
				if post([]string{a, b}[j%2]+"/capgo/demo/stats", evs) {
					mu.Lock()
					for _, v := range ts {
						acked[v] = true
					}
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	cmdA.Wait()
	stored := storedEvents(t, c.db)
	for v := range acked {
		if !stored[v] {
			t.Fatalf("acknowledged event %d is not in the database after SIGKILL", v)
		}
	}
	if len(acked) == devices*perDevice*perBatch {
		t.Fatal("every event was acknowledged: the kill came too late to test anything")
	}
	t.Logf("%d of %d events acknowledged around the SIGKILL", len(acked), devices*perDevice*perBatch)

	_, a = c.serve(t) // restart; every device resends everything
	for d := range devices {
		for j := range perDevice {
			if evs, _ := batch(d, j); !post([]string{a, b}[(j+1)%2]+"/capgo/demo/stats", evs) {
				t.Fatal("resend failed")
			}
		}
	}
	for _, base := range []string{a, b} {
		st, err := tracker.GetStats(context.Background(), client, base, "tok", "demo")
		if err != nil {
			t.Fatal(err)
		}
		if len(st.Builds) != 1 || st.Builds[0].DownloadsFailed != devices*perDevice*perBatch || st.Builds[0].Devices != devices {
			t.Fatalf("stats through %s: %+v; want %d failed downloads from %d devices", base, st.Builds, devices*perDevice*perBatch, devices)
		}
	}

	// A device blocked through one tracker is blocked through the other.
	latest := func(base, device string) (int, string) { return get(t, base+"/build/latest?app=demo&device="+device) }
	if _, body := latest(b, "blocked-device"); strings.Contains(body, `"blocked"`) {
		t.Fatalf("blocked before it failed: %s", body)
	}
	if !post(a+"/capgo/demo/stats", pluginEvent("blocked-device", "update_fail", "1.0.0", t0)) {
		t.Fatal("update_fail not acknowledged")
	}
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) { // it is told within milliseconds
		_, body := latest(b, "blocked-device")
		if strings.Contains(body, `"blocked":true`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("through the other tracker: %s; want blocked", body)
		}
	}

	// Retries count whichever tracker took them: three, split between the
	// two, block the device on both.
	for i, action := range []string{"set_fail", "checksum_fail", "unzip_fail"} {
		if !post([]string{a, b}[i%2]+"/capgo/demo/stats", pluginEvent("retry-device", action, "1.0.0", t0+int64(i))) {
			t.Fatalf("%s not acknowledged", action)
		}
	}
	for _, base := range []string{a, b} {
		for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
			_, body := latest(base, "retry-device")
			if strings.Contains(body, `"blocked":true`) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("after three retries split between the trackers, through %s: %s; want blocked", base, body)
			}
		}
	}

	// A sequence verified by one tracker is a floor for the other.
	key := filepath.Join(c.dir, "store", filepath.FromSlash(manifest.LatestKey("demo", "production")))
	old, err := os.ReadFile(key)
	if err != nil {
		t.Fatal(err)
	}
	c.upload(t, "1.0.1")
	if _, body := latest(a, "device-1"); !strings.Contains(body, `"build":"1.0.1"`) {
		t.Fatalf("after the upload: %s", body)
	}
	if err := os.WriteFile(key, old, 0o644); err != nil { // an attacker puts the older, validly signed one back
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond) // past cache_ttl
	if code, body := latest(b, "device-1"); code != http.StatusNotFound || !strings.Contains(body, `"not_servable"`) || !strings.Contains(body, string(manifest.RuleRollback)) {
		t.Fatalf("rolled back latest.json through the other tracker: %d %s", code, body)
	}
}

// storedEvents returns the timestamps of the download_fail events in the
// database.
func storedEvents(t *testing.T, url string) map[int64]bool {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	rows, _ := conn.Query(ctx, `SELECT ts FROM events WHERE action = 'download_fail'`)
	out := map[int64]bool{}
	var ts int64
	if _, err := pgx.ForEachRow(rows, []any{&ts}, func() error { out[ts] = true; return nil }); err != nil {
		t.Fatal(err)
	}
	return out
}

// offered is the version a tracker offers a device on native 1.0.0
// through both device APIs, which must agree ("" for none).
func offered(t *testing.T, base, device string) string {
	t.Helper()
	seed, capgo, err := offers(base, "demo", "", device, "1.0.0")
	if err == nil && seed != capgo {
		err = fmt.Errorf("/build/latest offers %q, the update endpoint %q", seed, capgo)
	}
	if err != nil {
		t.Fatalf("device %s through %s: %v", device, base, err)
	}
	return seed
}

// TestTwoTrackersHalt: a burst of set_fail through one tracker halts a
// staged rollout; the other tracker, with no report of its own, reads the
// halt from the shared state and stops offering the candidate through
// both APIs within its cache period. Neither holds a halt key, so the
// store keeps the candidate: the halt lives in PostgreSQL only, and a
// tracker killed with SIGKILL and restarted still applies it.
func TestTwoTrackersHalt(t *testing.T) {
	c := newCluster(t)
	policy := []string{"halt_percent=5", "halt_min_devices=10"}
	cmdA, a := c.serve(t, policy...)
	_, b := c.serve(t, policy...)
	c.upload(t, "2.0.0", "rollout=50")

	var in, out []string
	for i := 0; len(in) < 20 || len(out) < 5; i++ {
		d := fmt.Sprintf("device-%d", i)
		v := offered(t, a, d)
		switch v {
		case "2.0.0":
			in = append(in, d)
		case "1.0.0":
			out = append(out, d)
		default:
			t.Fatalf("device %s offered %q", d, v)
		}
		if got := offered(t, b, d); got != v {
			t.Fatalf("device %s: tracker B offers %q, A %q", d, got, v)
		}
	}

	// Failures from a tenth of the devices that got the candidate, through A,
	// until A halts (its marks of the devices offered reach the state
	// asynchronously). Each poll asks for another device: the trackers
	// limit the requests of each.
	polls := 0
	halted := func(base string) bool { polls++; return offered(t, base, in[2+polls%(len(in)-2)]) == "1.0.0" }
	t0 := time.Now().UnixMilli()
	for deadline := time.Now().Add(20 * time.Second); !halted(a); time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("tracker A did not halt the rollout after failures from 2 of 20 devices")
		}
		for i, d := range in[:2] {
			if !post(a+"/capgo/demo/stats", pluginEvent(d, "set_fail", "2.0.0", t0+int64(i))) {
				t.Fatal("set_fail not acknowledged")
			}
		}
	}
	for deadline := time.Now().Add(10 * time.Second); !halted(b); time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("tracker B still offers the candidate A halted")
		}
	}
	for _, d := range append(in, out...) {
		for _, base := range []string{a, b} {
			if v := offered(t, base, d); v != "1.0.0" {
				t.Fatalf("device %s through %s offered %q after the halt", d, base, v)
			}
		}
	}
	cmdA.Process.Signal(os.Kill)
	cmdA.Wait()
	_, a = c.serve(t, policy...) // a new process: what it knows of the halt comes from PostgreSQL
	for _, d := range append(in, out...) {
		if v := offered(t, a, d); v != "1.0.0" {
			t.Fatalf("device %s offered %q by tracker A restarted after SIGKILL; want the halt applied", d, v)
		}
	}

	ctx := context.Background()
	conn, err := pgx.Connect(ctx, c.db)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var n int
	var reason string
	if err := conn.QueryRow(ctx, `SELECT count(*), min(reason) FROM halts WHERE app = 'demo' AND channel = 'production'`).Scan(&n, &reason); err != nil || n != 1 || !strings.Contains(reason, "version 2.0.0") {
		t.Fatalf("halts in the shared state: %d (%q), %v; want one of version 2.0.0", n, reason, err)
	}
	for _, base := range []string{a, b} {
		st, err := tracker.GetStats(ctx, client, base, "tok", "demo")
		if err != nil {
			t.Fatal(err)
		}
		if len(st.Rollouts) != 1 || st.Rollouts[0].State != "halted" || st.Rollouts[0].InStore {
			t.Fatalf("rollouts through %s: %+v; want the rollout halted by the trackers, not in the store", base, st.Rollouts)
		}
		// The dashboard shows the halt and why, through either tracker.
		req, _ := http.NewRequest("GET", base+"/api/apps/demo", nil)
		req.Header.Set("Authorization", "Bearer tok")
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var app struct {
			Channels []struct {
				Name    string
				Rollout *struct{ State, Why string }
			}
		}
		err = json.NewDecoder(resp.Body).Decode(&app)
		resp.Body.Close()
		if err != nil || len(app.Channels) != 1 || app.Channels[0].Rollout == nil ||
			app.Channels[0].Rollout.State != "halted" || !strings.Contains(app.Channels[0].Rollout.Why, "version 2.0.0") {
			t.Fatalf("dashboard through %s: %+v (%v); want production's rollout halted, with why", base, app, err)
		}
	}
}
