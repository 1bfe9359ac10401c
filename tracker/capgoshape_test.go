package tracker

import (
	"strings"
	"testing"
)

// TestCapgoFailureShapes sends the update endpoint what real plugins and
// misconfigured apps send: every answer is HTTP 200 with error, message and
// kind "failed", which every plugin version reads as a failed check, never
// a 4xx that plugins report as download_fail.
func TestCapgoFailureShapes(t *testing.T) {
	f := newFixture(t)
	f.publish("retailer", "production", "1.0.0")
	_, base := startServer(t, f.config(t))
	updates := base + "/capgo/retailer/updates"
	noDevice := pluginRequest("", "builtin", "1.0.0")
	delete(noDevice, "device_id")
	for name, body := range map[string][]byte{
		"empty body":       {},
		"blank body":       []byte("  \n"),
		"malformed JSON":   []byte(`{"device_id":`),
		"not an object":    []byte(`[1,2]`),
		"no device_id":     mustJSON(t, noDevice),
		"empty device_id":  mustJSON(t, pluginRequest("", "builtin", "1.0.0")),
		"invalid device":   mustJSON(t, pluginRequest("bad id!", "builtin", "1.0.0")),
		"control in build": mustJSON(t, pluginRequest(deviceA, "builtin", "1.0\x01")),
	} {
		t.Run(name, func(t *testing.T) {
			resp, raw := do(t, nil, "POST", updates, body, "Content-Type", "application/json")
			ans := decode[map[string]any](t, raw)
			if resp.StatusCode != 200 || ans["kind"] != "failed" || ans["error"] != codeInvalid || ans["message"] == "" {
				t.Fatalf("%s %s, want 200 with kind failed", resp.Status, raw)
			}
		})
	}
}

// TestCapgoTrailingSlash: an updateUrl or statsUrl written with a final
// '/' works, as it does with Capgo's own server.
func TestCapgoTrailingSlash(t *testing.T) {
	f := newFixture(t)
	f.publish("retailer", "production", "2.0.0")
	_, base := startServer(t, f.config(t))
	resp, body := do(t, nil, "POST", base+"/capgo/retailer/updates/", mustJSON(t, pluginRequest(deviceA, "builtin", "1.0.0")))
	if resp.StatusCode != 200 || decode[map[string]any](t, body)["version"] != "2.0.0" {
		t.Errorf("updates/: %s %s", resp.Status, body)
	}
	resp, body = do(t, nil, "POST", base+"/capgo/retailer/stats/", mustJSON(t, pluginEvent(deviceA, "set", "2.0.0", 1700000000000)))
	if resp.StatusCode != 200 || !strings.Contains(string(body), `"ok"`) {
		t.Errorf("stats/: %s %s", resp.Status, body)
	}
	// Only one slash is forgiven, and only under /capgo/.
	for _, p := range []string{"/capgo/retailer/updates//", "/healthz/"} {
		if resp, body := do(t, nil, "GET", base+p, nil); resp.StatusCode == 200 {
			t.Errorf("%s: %s %s", p, resp.Status, body)
		}
	}
}
