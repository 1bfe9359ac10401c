package client_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/cartona/deploy/manifest"
	"github.com/cartona/deploy/state"
	"github.com/cartona/deploy/state/sqlite"
	"github.com/cartona/deploy/store"
	"github.com/cartona/deploy/store/file"
	"github.com/cartona/deploy/tracker"
)

// TestFleetHaltReachesTheStore runs a 10 % rollout to 1,000 devices behind
// a real tracker, has the client verify the store's latest.json and select
// a build for each device as it does reading the CDN, then halts the
// candidate with a burst of set_fail reports: the client, reading the store
// again, gives no device the candidate.
func TestFleetHaltReachesTheStore(t *testing.T) {
	run(t, nil, npmInstalled(t), "run", "build")

	st, err := file.Open(filepath.Join(t.TempDir(), "store"))
	if err != nil {
		t.Fatal(err)
	}
	root, user, halter := key(t), key(t), key(t)
	put := func(k string, v []byte) {
		if _, err := st.Put(context.Background(), k, bytes.NewReader(v), store.PutOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	sign := func(typ string, v any, k ed25519.PrivateKey) []byte {
		env, err := manifest.Sign(typ, v, k)
		if err != nil {
			t.Fatal(err)
		}
		return env.Marshal()
	}
	now := time.Now().UTC().Truncate(time.Second)
	put(manifest.ACLKey, sign(manifest.TypeACL, manifest.ACL{Version: 1, Issued: now, Users: []manifest.User{
		{Name: "ci", Keys: []string{manifest.FormatPublicKey(manifest.Public(user))}, Grants: map[string]manifest.Grant{"retailer": {CanUpload: true}}},
		{Name: "tracker", Keys: []string{manifest.FormatPublicKey(manifest.Public(halter))}, Grants: map[string]manifest.Grant{"retailer": {CanHalt: true}}},
	}}, root))
	stable, cand := build(1, "1.0.0"), build(2, "1.1.0")
	put(manifest.LatestKey("retailer", "production"), sign(manifest.TypeLatest, manifest.Latest{App: "retailer", Channel: "production",
		Sequence: 1, Issued: now, Expires: now.Add(time.Hour), Build: stable,
		Candidate: &manifest.Candidate{Build: cand, Percent: 10, Rollout: "r1"}}, user))

	base, db := serveStore(t, st, manifest.Public(root), tracker.HaltPolicy{Key: halter})

	devices := make([]string, 1000)
	for i := range devices {
		devices[i] = fmt.Sprintf("device-%04d", i)
	}
	got := clientSelects(t, st.Root, manifest.Public(root), devices)
	var inCohort []string
	for i, d := range devices {
		c := manifest.Candidate{Percent: 10, Rollout: "r1"}
		want := stable.ID
		if manifest.InCohort("retailer", "production", &c, d) {
			want = cand.ID
			inCohort = append(inCohort, d)
		}
		if got[i] != want {
			t.Fatalf("device %s: the client selects %s, the cohort says %s", d, got[i], want)
		}
	}
	if n := len(inCohort); n < 80 || n > 120 {
		t.Errorf("%d of 1000 devices in the 10 %% cohort", n)
	}

	// The candidate's devices check with the tracker, then half report set_fail.
	var evs []map[string]any
	for i, d := range inCohort {
		post(t, base+"/capgo/retailer/updates", map[string]any{"device_id": d, "version_name": "builtin", "version_build": "1.0"})
		if i%2 == 0 {
			evs = append(evs, map[string]any{"device_id": d, "action": "set_fail", "version_name": cand.Version, "timestamp": 1700000000000 + i})
		}
	}
	if err := db.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	post(t, base+"/capgo/retailer/stats", evs)

	for i, id := range clientSelects(t, st.Root, manifest.Public(root), devices) {
		if id != stable.ID {
			t.Fatalf("after the halt the client selects %s for %s, want the stable %s", id, devices[i], stable.ID)
		}
	}
}

// serveStore runs a tracker on the store, with a 1 ms manifest cache and no
// request limits, on loopback, and returns its base URL and its state.
func serveStore(t *testing.T, st store.Store, root ed25519.PublicKey, halt tracker.HaltPolicy) (string, state.State) {
	db, err := sqlite.Open(filepath.Join(t.TempDir(), "state.db"), state.Options{})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := tracker.New(tracker.Config{Store: st, Trust: manifest.Trust{Roots: []ed25519.PublicKey{root}},
		State: db, CacheTTL: time.Millisecond, Log: zerolog.New(io.Discard), Limits: tracker.Limits{DeviceRate: -1, AddrRate: -1}, Halt: halt})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	go srv.Serve(ctx, ln)
	return "http://" + ln.Addr().String(), db
}

func key(t *testing.T) ed25519.PrivateKey {
	_, k, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// build is a build reference of app retailer; its bundle is never fetched.
func build(n int64, version string) manifest.BuildRef {
	sum := sha256.Sum256([]byte(version))
	sha := hex.EncodeToString(sum[:])
	return manifest.BuildRef{ID: manifest.BuildID("retailer", n), Number: n, Version: version,
		Bundle: manifest.BundleKey("retailer", sha), SHA256: sha, Size: 100}
}

func post(t *testing.T, url string, v any) {
	t.Helper()
	body, _ := json.Marshal(v)
	resp, err := http.Post(url, "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	out, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("POST %s: %s %s", url, resp.Status, out)
	}
}

// clientSelects has the TypeScript client verify the store's acl.json and
// latest.json, as a device reading the CDN does, and returns the build id
// it selects for each device ("" for none).
func clientSelects(t *testing.T, storeDir string, root ed25519.PublicKey, devices []string) []string {
	t.Helper()
	asks := make([]ask, len(devices))
	for i, d := range devices {
		asks[i] = ask{App: "retailer", Channel: "production", Device: d, Native: "1.0"}
	}
	var ids []string
	for _, b := range clientSelect(t, storeDir, root, asks) {
		ids = append(ids, b.ID)
	}
	return ids
}

// ask is a device asking for its build: its app, channel, id and native
// version.
type ask struct{ App, Channel, Device, Native string }

// selected is the build the client selects ("" for none).
type selected struct{ ID, Version string }

// clientSelect has the TypeScript client verify the store's acl.json and
// each channel's latest.json, as a device reading the CDN does, and
// returns the build it selects for each ask.
func clientSelect(t *testing.T, storeDir string, root ed25519.PublicKey, asks []ask) []selected {
	t.Helper()
	const script = `
import { readFileSync } from 'node:fs';
import { verifyLatest, selectBuild } from './dist/index.js';
const [dir, root, asksJSON] = process.argv.slice(1);
const acl = readFileSync(dir + '/acl.json');
const out = [];
for (const a of JSON.parse(asksJSON)) {
  const latest = readFileSync(dir + '/apps/' + a.App + '/channels/' + a.Channel + '/latest.json');
  const { latest: l } = await verifyLatest({ roots: [root] }, acl, latest, { app: a.App, channel: a.Channel });
  const b = (await selectBuild(l, a.Native, a.Device)).build;
  out.push({ ID: b?.id ?? '', Version: b?.version ?? '' });
}
console.log(JSON.stringify(out));`
	list, _ := json.Marshal(asks)
	cmd := exec.Command("node", "--input-type=module", "-e", script, storeDir, manifest.FormatPublicKey(root), string(list))
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("node: %v\n%s", err, out)
	}
	var sel []selected
	if err := json.Unmarshal(bytes.TrimSpace(out), &sel); err != nil || len(sel) != len(asks) {
		t.Fatalf("node answered %s (%v)", out, err)
	}
	return sel
}
