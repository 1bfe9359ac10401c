package tracker

import (
	"bytes"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/cartona/deploy/manifest"
)

// wantNotServable checks the answers of both protocols for a build that
// can never verify: a 404 not_servable naming the rule on the seed API
// (never a 5xx, which devices retry), HTTP 200 with kind "blocked" on the
// Capgo update endpoint, and a 404 not_servable for its download.
func wantNotServable(t *testing.T, base, rule, id string) {
	t.Helper()
	resp, body := do(t, nil, "GET", base+"/build/latest?app=retailer&device="+deviceA, nil)
	if ans := decode[ErrorResponse](t, body); resp.StatusCode != http.StatusNotFound || ans.Error != codeNotServable || !strings.Contains(ans.Message, rule) || ans.Rule != rule {
		t.Errorf("seed latest: %s %s, want 404 not_servable (%s)", resp.Status, body, rule)
	}
	resp, body = do(t, nil, "POST", base+"/capgo/retailer/updates", mustJSON(t, pluginRequest(deviceA, "builtin", "1")))
	if ans := decode[map[string]any](t, body); resp.StatusCode != 200 || ans["kind"] != "blocked" || ans["error"] != codeNotServable || ans["url"] != nil {
		t.Errorf("capgo update: %s %s, want 200 with kind blocked", resp.Status, body)
	}
	resp, body = do(t, noRedirects, "GET", base+"/build/download?id="+id+"&device="+deviceA, nil)
	if ans := decode[ErrorResponse](t, body); resp.StatusCode != http.StatusNotFound || ans.Error != codeNotServable {
		t.Errorf("download of %s: %s %s, want 404 not_servable", id, resp.Status, body)
	}
}

// TestRevokedBuildIsNotServable: the uploader of the current build loses
// the grant, and a fresh tracker is asked for it.
func TestRevokedBuildIsNotServable(t *testing.T) {
	f := newFixture(t)
	ref := f.publish("retailer", "production", "1.0.0")
	f.writeGrant(false)
	_, base := startServer(t, f.config(t))
	wantNotServable(t, base, string(manifest.RuleNotGranted), ref.ID)
}

// TestOversizedBuildIsNotServable: a latest.json and a build record over
// 64 KiB, as an old `deploy upload` could write them.
func TestOversizedBuildIsNotServable(t *testing.T) {
	f := newFixture(t)
	ref := f.publish("retailer", "production", strings.Repeat("9", 70000))
	_, base := startServer(t, f.config(t))
	wantNotServable(t, base, string(manifest.RuleTooLarge), ref.ID)

	// A valid latest.json naming a build whose record carries 70,000
	// characters of notes: the record is never served either.
	f.publish("retailer", "production", "2.0.0")
	n := f.number["retailer"]
	big := manifest.Build{App: "retailer", BuildRef: ref, Uploader: "ci", Created: time.Now().UTC(), Notes: strings.Repeat("n", 70000)}
	big.ID, big.Number = manifest.BuildID("retailer", n+1), n+1
	f.put(manifest.BuildKey("retailer", n+1), f.sign(manifest.TypeBuild, big, f.user))
	resp, body := do(t, nil, "GET", base+"/build/download?id="+big.ID+"&device="+deviceA, nil)
	if ans := decode[ErrorResponse](t, body); resp.StatusCode != http.StatusNotFound || ans.Error != codeNotServable || !strings.Contains(ans.Message, string(manifest.RuleTooLarge)) {
		t.Errorf("download of an oversized build record: %s %s", resp.Status, body)
	}
}

// TestUnreadableStoreIs503: a store that cannot be read right now answers
// 503 on the seed API and kind "failed" on the Capgo endpoint, and serves
// again once it can be read.
func TestUnreadableStoreIs503(t *testing.T) {
	f := newFixture(t)
	ref := f.publish("retailer", "production", "1.0.0")
	cfg := f.config(t)
	_, base := startServer(t, cfg)
	latest := base + "/build/latest?app=retailer&device=" + deviceA
	// The store's folder becomes a file: every read fails with ENOTDIR,
	// which is neither "not found" nor a verdict on a manifest.
	moved := f.dir + ".away"
	if err := os.Rename(f.dir, moved); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(f.dir, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	time.Sleep(3 * cfg.CacheTTL)
	resp, body := do(t, nil, "GET", latest, nil)
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" || decode[ErrorResponse](t, body).Error != codeUnavailable {
		t.Errorf("seed latest with an unreadable store: %s %s, want 503 with Retry-After", resp.Status, body)
	}
	_, body = do(t, nil, "POST", base+"/capgo/retailer/updates", mustJSON(t, pluginRequest(deviceA, "builtin", "1")))
	if ans := decode[map[string]any](t, body); ans["kind"] != "failed" || ans["error"] != codeUnavailable {
		t.Errorf("capgo update with an unreadable store: %s", body)
	}

	if err := os.Remove(f.dir); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(moved, f.dir); err != nil {
		t.Fatal(err)
	}
	time.Sleep(3 * cfg.CacheTTL)
	if resp, body := do(t, nil, "GET", latest, nil); resp.StatusCode != 200 || !bytes.Contains(body, []byte(ref.ID)) {
		t.Errorf("after the store is back: %s %s", resp.Status, body)
	}
}
