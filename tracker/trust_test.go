package tracker

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/cartona/deploy/manifest"
	"github.com/cartona/deploy/store"
)

// TestTamperedManifestIsNeverServed edits a signed latest.json in the
// store, and signs one with a key the ACL does not grant.
func TestTamperedManifestIsNeverServed(t *testing.T) {
	f := newFixture(t)
	good := f.publish("retailer", "production", "1.0.0")
	evil := f.publish("retailer", "evil", "6.6.6") // a bundle that exists, signed for another channel

	cases := map[string]func(){
		"payload edited": func() {
			env := decode[manifest.Envelope](t, f.get(manifest.LatestKey("retailer", "production")))
			env.Payload = bytes.Replace(env.Payload, []byte(good.SHA256), []byte(evil.SHA256), 1)
			env.Payload = bytes.Replace(env.Payload, []byte(good.Bundle), []byte(evil.Bundle), 1)
			f.put(manifest.LatestKey("retailer", "production"), env.Marshal())
		},
		"signed by an unknown key": func() {
			l := manifest.Latest{App: "retailer", Channel: "production", Sequence: 99, Issued: time.Now(), Expires: time.Now().Add(time.Hour), Build: evil}
			f.put(manifest.LatestKey("retailer", "production"), f.sign(manifest.TypeLatest, l, newKey(t)))
		},
		"copied from another channel": func() {
			f.put(manifest.LatestKey("retailer", "production"), f.get(manifest.LatestKey("retailer", "evil")))
		},
		"acl signed by another root": func() {
			acl := manifest.ACL{Version: 50, Users: []manifest.User{{Name: "mallory", Keys: []string{manifest.FormatPublicKey(manifest.Public(f.user))}, Grants: map[string]manifest.Grant{"*": {CanUpload: true}}}}}
			f.put(manifest.ACLKey, f.sign(manifest.TypeACL, acl, newKey(t)))
		},
	}
	for name, tamper := range cases {
		t.Run(name, func(t *testing.T) {
			restoreACL, restoreLatest := f.get(manifest.ACLKey), f.get(manifest.LatestKey("retailer", "production"))
			defer func() {
				f.put(manifest.ACLKey, restoreACL)
				f.put(manifest.LatestKey("retailer", "production"), restoreLatest)
			}()
			var logs logBuffer
			cfg := f.config(t)
			cfg.Log = zerolog.New(&logs)
			_, base := startServer(t, cfg)
			if _, body := do(t, nil, "GET", base+"/build/latest?app=retailer&device="+deviceA, nil); !bytes.Contains(body, []byte(good.ID)) {
				t.Fatalf("before tampering: %s", body)
			}
			tamper()
			time.Sleep(3 * cfg.CacheTTL)
			resp, body := do(t, nil, "GET", base+"/build/latest?app=retailer&device="+deviceA, nil)
			if resp.StatusCode != http.StatusNotFound || bytes.Contains(body, []byte(evil.SHA256)) || !bytes.Contains(body, []byte("fails verification")) {
				t.Errorf("seed API: %s %s", resp.Status, body)
			}
			_, body = do(t, nil, "POST", base+"/capgo/retailer/updates", mustJSON(t, pluginRequest(deviceA, "builtin", "1")))
			if ans := decode[map[string]any](t, body); ans["kind"] != "blocked" || ans["url"] != nil {
				t.Errorf("capgo: %s", body)
			}
			if !strings.Contains(logs.String(), `"level":"warn"`) || !strings.Contains(logs.String(), `"rule":`) {
				t.Errorf("no warning with the rule in the log:\n%s", logs.String())
			}
		})
	}
}

// TestRollbackIsRefused puts an older, validly signed latest.json (and an
// older ACL) back into the store after the tracker saw newer ones.
func TestRollbackIsRefused(t *testing.T) {
	f := newFixture(t)
	f.publish("retailer", "production", "1")
	oldLatest, oldACL := f.get(manifest.LatestKey("retailer", "production")), f.get(manifest.ACLKey)
	ref2 := f.publish("retailer", "production", "2")
	f.writeACL()
	cfg := f.config(t)
	_, base := startServer(t, cfg)
	latest := base + "/build/latest?app=retailer&device=" + deviceA
	if _, body := do(t, nil, "GET", latest, nil); !bytes.Contains(body, []byte(ref2.ID)) {
		t.Fatalf("before rollback: %s", body)
	}

	f.put(manifest.LatestKey("retailer", "production"), oldLatest)
	time.Sleep(3 * cfg.CacheTTL)
	resp, body := do(t, nil, "GET", latest, nil)
	if resp.StatusCode != http.StatusNotFound || !bytes.Contains(body, []byte(manifest.RuleRollback)) {
		t.Errorf("rolled back latest.json: %s %s", resp.Status, body)
	}

	f.point("retailer", "production", ref2) // a newer sequence: served again
	f.put(manifest.ACLKey, oldACL)
	time.Sleep(3 * cfg.CacheTTL)
	resp, body = do(t, nil, "GET", latest, nil)
	if resp.StatusCode != http.StatusNotFound || !bytes.Contains(body, []byte(manifest.RuleACLRollback)) {
		t.Errorf("rolled back acl.json: %s %s", resp.Status, body)
	}
}

// TestOnlyVerifiedBundlesAreServed asks for a build whose bundle is in the
// store but whose build record is missing or forged.
func TestOnlyVerifiedBundlesAreServed(t *testing.T) {
	f := newFixture(t)
	ref := f.publish("retailer", "production", "1")
	// Build 2: a bundle and a record signed by a key the ACL does not know.
	forged := ref
	forged.ID, forged.Number = manifest.BuildID("retailer", 2), 2
	f.put(manifest.BuildKey("retailer", 2), f.sign(manifest.TypeBuild, manifest.Build{App: "retailer", BuildRef: forged}, newKey(t)))
	_, base := startServer(t, f.config(t))
	for id, want := range map[string]string{ref.ID: "", "retailer-2": codeNotServable, "retailer-3": codeNotFound} {
		resp, body := do(t, noRedirects, "GET", base+"/build/download?id="+id+"&device="+deviceA, nil)
		if want == "" {
			if resp.StatusCode != 200 {
				t.Errorf("download %s: %s", id, resp.Status)
			}
		} else if code := decode[ErrorResponse](t, body).Error; resp.StatusCode != http.StatusNotFound || code != want {
			t.Errorf("download %s: %s %s, want 404 %s", id, resp.Status, body, want)
		}
	}
}

// countingStore counts reads of latest.json.
type countingStore struct {
	store.Store
	latestReads atomic.Int32
	delay       atomic.Int64 // nanoseconds
}

func (c *countingStore) Get(ctx context.Context, key string) (io.ReadCloser, store.Info, error) {
	if strings.HasSuffix(key, "/latest.json") {
		c.latestReads.Add(1)
		time.Sleep(time.Duration(c.delay.Load()))
	}
	return c.Store.Get(ctx, key)
}

// TestBurstMakesOneStoreRead sends concurrent requests on a cold cache.
func TestBurstMakesOneStoreRead(t *testing.T) {
	f := newFixture(t)
	f.publish("retailer", "production", "1")
	cs := &countingStore{Store: f.store}
	cs.delay.Store(int64(50 * time.Millisecond))
	cfg := f.config(t)
	cfg.Store, cfg.CacheTTL = cs, time.Minute
	_, base := startServer(t, cfg)
	var wg sync.WaitGroup
	var bad atomic.Int32
	for range 50 {
		wg.Go(func() {
			resp, err := http.Get(base + "/build/latest?app=retailer&device=" + deviceA)
			if err != nil || resp.StatusCode != 200 {
				bad.Add(1)
			}
			if err == nil {
				var v map[string]json.RawMessage
				json.NewDecoder(resp.Body).Decode(&v)
				resp.Body.Close()
			}
		})
	}
	wg.Wait()
	if bad.Load() != 0 || cs.latestReads.Load() != 1 {
		t.Errorf("%d failed requests, %d store reads of latest.json; want 0 and 1", bad.Load(), cs.latestReads.Load())
	}
}

// TestRollbackIsRefusedAfterRestart restarts the tracker on the same
// database after it served sequence 2, then puts the still valid sequence 1
// latest.json (and then the older ACL) back into the store.
func TestRollbackIsRefusedAfterRestart(t *testing.T) {
	f := newFixture(t)
	f.publish("retailer", "production", "1")
	oldLatest, oldACL := f.get(manifest.LatestKey("retailer", "production")), f.get(manifest.ACLKey)
	ref2 := f.publish("retailer", "production", "2")
	f.writeACL()
	cfg, db := f.config(t), filepath.Join(t.TempDir(), "state.db")
	cfg.State = openState(t, db)
	_, base, stop := startStoppable(t, cfg)
	latest := base + "/build/latest?app=retailer&device=" + deviceA
	if _, body := do(t, nil, "GET", latest, nil); !bytes.Contains(body, []byte(ref2.ID)) {
		t.Fatalf("before restart: %s", body)
	}
	stop()

	f.put(manifest.LatestKey("retailer", "production"), oldLatest)
	cfg.State = openState(t, db)
	_, base, stop = startStoppable(t, cfg)
	latest = base + "/build/latest?app=retailer&device=" + deviceA
	resp, body := do(t, nil, "GET", latest, nil)
	if resp.StatusCode != http.StatusNotFound || !bytes.Contains(body, []byte(manifest.RuleRollback)) {
		t.Errorf("rolled back latest.json after a restart: %s %s", resp.Status, body)
	}
	_, body = do(t, nil, "POST", base+"/capgo/retailer/updates", mustJSON(t, pluginRequest(deviceA, "2", "1")))
	if ans := decode[map[string]any](t, body); ans["kind"] != "blocked" || ans["url"] != nil {
		t.Errorf("capgo after a restart: %s", body)
	}

	stop()

	f.point("retailer", "production", ref2) // sequence 3, but the ACL is older
	f.put(manifest.ACLKey, oldACL)
	cfg.State = openState(t, db)
	_, base = startServer(t, cfg)
	resp, body = do(t, nil, "GET", base+"/build/latest?app=retailer&device="+deviceA, nil)
	if resp.StatusCode != http.StatusNotFound || !bytes.Contains(body, []byte(manifest.RuleACLRollback)) {
		t.Errorf("rolled back acl.json after a restart: %s %s", resp.Status, body)
	}
}

// TestMinACLVersionPin replays an older acl.json that still grants a
// revoked user to trackers with an empty database: without a pin the first
// root-signed ACL is trusted (the window the pin closes); with
// MinACLVersion it is refused.
func TestMinACLVersionPin(t *testing.T) {
	f := newFixture(t)
	ref := f.publish("retailer", "production", "1.0.0")
	grantingACL := f.get(manifest.ACLKey)
	f.writeGrant(false) // version 2 revokes the user who signed build 1
	f.put(manifest.ACLKey, grantingACL)

	_, base := startServer(t, f.config(t))
	if resp, body := do(t, nil, "GET", base+"/build/latest?app=retailer&device="+deviceA, nil); resp.StatusCode != 200 || !bytes.Contains(body, []byte(ref.ID)) {
		t.Fatalf("without a pin, a fresh tracker trusts the replayed ACL: %s %s", resp.Status, body)
	}

	cfg := f.config(t)
	cfg.MinACLVersion = 2
	_, base = startServer(t, cfg)
	wantNotServable(t, base, string(manifest.RuleACLRollback), ref.ID)

	cfg.MinACLVersion = -1
	if _, err := New(cfg); err == nil || !strings.Contains(err.Error(), "negative") {
		t.Errorf("negative pin: %v", err)
	}
}
