package tracker

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/cartona/deploy/manifest"
)

// pluginRequest is what @capgo/capacitor-updater POSTs to updateUrl, and
// with an action and timestamp, to statsUrl.
func pluginRequest(device, versionName, versionBuild string) map[string]any {
	return map[string]any{
		"platform": "android", "device_id": device, "app_id": "com.cartona.retailer", "custom_id": "",
		"version_build": versionBuild, "version_code": "10", "version_os": "14", "version_name": versionName,
		"plugin_version": "8.51.14", "is_emulator": false, "is_prod": true, "install_source": "com.android.vending",
	}
}

func pluginEvent(device, action, version string, ts int64) map[string]any {
	ev := pluginRequest(device, version, "1.0.0")
	ev["action"], ev["timestamp"], ev["old_version_name"] = action, ts, "builtin"
	return ev
}

// TestCapgoPlugin plays the plugin with autoUpdate: true against the
// tracker's updateUrl and statsUrl.
func TestCapgoPlugin(t *testing.T) {
	f := newFixture(t)
	ref := f.publish("retailer", "production", "2.0.0")
	cfg := f.config(t)
	cfg.StatsToken = "tok"
	_, base := startServer(t, cfg)
	updates, stats := base+"/capgo/retailer/updates", base+"/capgo/retailer/stats"

	// The device runs its builtin bundle: it is offered the build.
	resp, body := do(t, nil, "POST", updates, mustJSON(t, pluginRequest(deviceA, "1.0.0", "1.0.0")))
	if resp.StatusCode != 200 {
		t.Fatalf("update: %s %s", resp.Status, body)
	}
	var raw map[string]any
	json.Unmarshal(body, &raw)
	if len(raw) != 3 || raw["version"] != "2.0.0" || raw["checksum"] != ref.SHA256 {
		t.Fatalf("update answer %s, want exactly version, url and checksum", body)
	}
	for k, v := range raw {
		if v == nil {
			t.Errorf("update answer has null %s", k)
		}
	}
	// The plugin downloads url (following redirects) and checks checksum.
	resp, data := do(t, nil, "GET", raw["url"].(string), nil)
	sum := sha256.Sum256(data)
	if resp.StatusCode != 200 || hex.EncodeToString(sum[:]) != raw["checksum"] {
		t.Fatalf("download of url: %s, checksum mismatch", resp.Status)
	}

	// Stats: an array (plugin >= 8.42) and a single object (older plugins),
	// then the same again, as a plugin resends after a lost answer.
	ts := time.Now().UnixMilli()
	batch := mustJSON(t, []any{pluginEvent(deviceA, "download_complete", "2.0.0", ts), pluginEvent(deviceA, "set", "2.0.0", ts+1)})
	single := mustJSON(t, pluginEvent(deviceB, "download_fail", "2.0.0", ts+2))
	for range 2 {
		for _, b := range [][]byte{batch, single} {
			resp, body := do(t, nil, "POST", stats, b)
			if resp.StatusCode != 200 || string(bytes.TrimSpace(body)) != `{"status":"ok"}` {
				t.Fatalf("stats: %s %s", resp.Status, body)
			}
		}
	}

	// Now on 2.0.0: up to date.
	wantNoUpdate(t, updates, pluginRequest(deviceA, "2.0.0", "1.0.0"), "up_to_date")

	// 2.0.0 failed to start on device B: never offered to B again, still
	// offered to A's twin C; the seed API holds it back from B too.
	const deviceC = "d2b5c1e0-3f4a-4b6c-8d7e-9f0a1b2c3d4e"
	do(t, nil, "POST", stats, mustJSON(t, []any{pluginEvent(deviceB, "update_fail", "2.0.0", ts+3)}))
	wantNoUpdate(t, updates, pluginRequest(deviceB, "builtin", "1.0.0"), "blocked")
	if resp, body := do(t, nil, "POST", updates, mustJSON(t, pluginRequest(deviceC, "builtin", "1.0.0"))); decode[map[string]any](t, body)["version"] != "2.0.0" {
		t.Errorf("another device: %s %s", resp.Status, body)
	}
	_, body = do(t, nil, "GET", base+"/build/latest?"+url.Values{"app": {"retailer"}, "device": {deviceB}}.Encode(), nil)
	if seed := decode[map[string]any](t, body); seed["build"] != nil || seed["blocked"] != true {
		t.Errorf("seed latest for a device that failed the build: %s", body)
	}
	// A newer build is offered to B again.
	f.publish("retailer", "production", "2.0.1")
	time.Sleep(3 * cfg.CacheTTL)
	if _, body := do(t, nil, "POST", updates, mustJSON(t, pluginRequest(deviceB, "builtin", "1.0.0"))); decode[map[string]any](t, body)["version"] != "2.0.1" {
		t.Errorf("newer build after update_fail: %s", body)
	}

	st, err := GetStats(context.Background(), nil, base, "tok", "retailer")
	if err != nil {
		t.Fatal(err)
	}
	var got BuildStats
	for _, b := range st.Builds {
		if b.Version == "2.0.0" {
			got = b
		}
	}
	if got.BuildID != ref.ID || got.DownloadsCompleted != 1 || got.DownloadsFailed != 1 || got.UpdatesFailed != 1 || got.DownloadsStarted != 1 || got.Devices != 3 {
		t.Errorf("stats of 2.0.0 = %+v; want resent events counted once", got)
	}
}

func wantNoUpdate(t *testing.T, updates string, req map[string]any, kind string) map[string]any {
	t.Helper()
	resp, body := do(t, nil, "POST", updates, mustJSON(t, req))
	ans := decode[map[string]any](t, body)
	if resp.StatusCode != 200 || ans["kind"] != kind || ans["error"] == "" || ans["message"] == "" || ans["version"] != nil || ans["url"] != nil {
		t.Fatalf("update: %s %s, want 200 with kind %s", resp.Status, body, kind)
	}
	return ans
}

func TestCapgoChannelsAndNativeVersion(t *testing.T) {
	f := newFixture(t)
	f.publish("retailer", "production", "1.0.0")
	f.publish("retailer", "beta", "1.1.0-beta", func(b *manifest.BuildRef) { b.MinNative = "2.1" })
	_, base := startServer(t, f.config(t))
	updates := base + "/capgo/retailer/updates"

	req := pluginRequest(deviceA, "builtin", "2.1.0")
	req["defaultChannel"] = "beta"
	if _, body := do(t, nil, "POST", updates, mustJSON(t, req)); decode[map[string]any](t, body)["version"] != "1.1.0-beta" {
		t.Errorf("beta channel: %s", body)
	}
	req["version_build"] = "2.0.9"
	ans := wantNoUpdate(t, updates, req, "blocked")
	if ans["error"] != manifest.SelectNone {
		t.Errorf("native check: %v", ans)
	}
	req["defaultChannel"] = "nightly"
	wantNoUpdate(t, updates, req, "failed")
	wantNoUpdate(t, base+"/capgo/unknown-app/updates", pluginRequest(deviceA, "builtin", "1"), "failed")
}

// TestDownloadCompleteCountsOncePerDevice reports one download through the
// seed's /build/download/complete and the plugin's own download_complete
// stat (statsUrl pointing at the tracker too): one device, one download.
func TestDownloadCompleteCountsOncePerDevice(t *testing.T) {
	f := newFixture(t)
	ref := f.publish("retailer", "production", "2.0.0")
	cfg := f.config(t)
	cfg.StatsToken = "tok"
	_, base := startServer(t, cfg)
	complete := func(device string) {
		resp, body := do(t, nil, "GET", base+"/build/download/complete?"+url.Values{"id": {ref.ID}, "device": {device}}.Encode(), nil)
		if resp.StatusCode != 200 {
			t.Fatalf("complete: %s %s", resp.Status, body)
		}
	}
	stat := func(device string, ts int64) {
		resp, body := do(t, nil, "POST", base+"/capgo/retailer/stats", mustJSON(t, []any{pluginEvent(device, "download_complete", "2.0.0", ts)}))
		if resp.StatusCode != 200 {
			t.Fatalf("stats: %s %s", resp.Status, body)
		}
	}
	ts := time.Now().UnixMilli()
	complete(deviceA)
	stat(deviceA, ts)
	stat(deviceA, ts+60000) // downloaded again later
	stat(deviceB, ts)

	st, err := GetStats(context.Background(), nil, base, "tok", "retailer")
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Builds) != 1 || st.Builds[0].DownloadsCompleted != 2 || st.Builds[0].Devices != 2 {
		t.Errorf("stats = %+v, want 2 downloads completed by 2 devices", st.Builds)
	}
}

// TestCapgoSetupErrors sends update checks with an invalid app in the
// updateUrl or an invalid defaultChannel: the plugin's protocol wants
// HTTP 200 with kind "failed", not a 400.
func TestCapgoSetupErrors(t *testing.T) {
	f := newFixture(t)
	f.publish("retailer", "production", "1.0.0")
	f.publish("retailer", "beta", "1.1.0")
	_, base := startServer(t, f.config(t))
	updates := base + "/capgo/retailer/updates"
	for channel, hint := range map[string]string{"Beta": `"beta"`, "A B": "lowercase letters", "../x": "lowercase letters"} {
		req := pluginRequest(deviceA, "builtin", "1.0.0")
		req["defaultChannel"] = channel
		ans := wantNoUpdate(t, updates, req, "failed")
		if ans["error"] != codeInvalid || !strings.Contains(ans["message"].(string), hint) {
			t.Errorf("defaultChannel %q: %v", channel, ans)
		}
	}
	for _, app := range []string{"Retailer", "bad%21", "_x"} {
		ans := wantNoUpdate(t, base+"/capgo/"+app+"/updates", pluginRequest(deviceA, "builtin", "1.0.0"), "failed")
		if !strings.Contains(ans["message"].(string), "updateUrl") {
			t.Errorf("app %q: %v", app, ans)
		}
	}
	// A body that is not the plugin's JSON is kind "failed" too (capgoshape_test.go).
}
