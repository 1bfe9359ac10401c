package tracker

import (
	"context"
	"net/url"
	"testing"

	"github.com/cartona/deploy/manifest"
)

// TestSeedAPINativeVersion: /build/latest used to offer a build whatever
// its min_native. Now a device gets the newest build of the pointer its
// native version fits (here a fallback), and one that no build fits, or
// that does not say its native version, gets nothing and is told why.
func TestSeedAPINativeVersion(t *testing.T) {
	f := newFixture(t)
	old := f.publish("retailer", "production", "1.0.0", func(b *manifest.BuildRef) { b.MinNative = "1.0" })
	cur := f.publish("retailer", "production", "2.0.0", func(b *manifest.BuildRef) { b.MinNative = "2.0" })
	f.pointer(manifest.Latest{App: "retailer", Channel: "production", Build: cur, Fallbacks: []manifest.BuildRef{old}})
	_, base := startServer(t, f.config(t))

	latest := func(native string) map[string]any {
		q := url.Values{"app": {"retailer"}, "device": {deviceA}}
		if native != "" {
			q.Set("native", native)
		}
		resp, body := do(t, nil, "GET", base+"/build/latest?"+q.Encode(), nil)
		if resp.StatusCode != 200 {
			t.Fatalf("latest: %s %s", resp.Status, body)
		}
		return decode[map[string]any](t, body)
	}
	version := func(ans map[string]any) any {
		if b, ok := ans["build"].(map[string]any); ok {
			return b["build"]
		}
		return nil
	}
	for native, want := range map[string]any{"2.1.0": "2.0.0", "2.0.0-beta.1": "1.0.0", "1.5": "1.0.0", "0.9": nil, "": nil} {
		ans := latest(native)
		if got := version(ans); got != want {
			t.Errorf("native %q: offered %v, want %v (%v)", native, got, want, ans)
		}
		if want == nil && (ans["error"] != manifest.SelectNone || ans["message"] == "" || ans["blocked"] != true) {
			t.Errorf("native %q: answer %v, want no_compatible_build with a message", native, ans)
		}
	}
}

// TestRetriesBounded: set_fail, checksum_fail and unzip_fail each make the
// plugin delete the bundle and download it again at the next check. After
// RetryLimit of them (of any kind) a device is no longer offered that build
// by either API; it gets the stable build back when the failed build was a
// candidate, and other devices still get it.
func TestRetriesBounded(t *testing.T) {
	fl := newFleet(t, 100, func(c *Config) { c.Halt.Percent = -1 }) // no halt: only the per-device bound
	d, other := fl.devices[0], fl.devices[1]
	for i, action := range []string{"set_fail", "checksum_fail"} {
		if got := fl.capgoVersion(t, d); got != fl.cand.Version {
			t.Fatalf("after %d failures the device is offered %q, want the candidate still", i, got)
		}
		fl.reportFailures(t, []string{d}, action)
	}
	fl.reportFailures(t, []string{d}, "checksum_fail") // sent again: counts once
	if got := fl.capgoVersion(t, d); got != fl.cand.Version {
		t.Fatalf("a resent failure counted twice: offered %q", got)
	}
	evs := []map[string]any{pluginEvent(d, "unzip_fail", fl.cand.Version, 1800000000000)}
	if resp, body := do(t, nil, "POST", fl.base+"/capgo/"+fl.app+"/stats", mustJSON(t, evs)); resp.StatusCode != 200 {
		t.Fatalf("stats: %s %s", resp.Status, body)
	}
	if seed, capgo := fl.seedVersion(t, d), fl.capgoVersion(t, d); seed != fl.stable.Version || capgo != fl.stable.Version {
		t.Errorf("after 3 failures: /build/latest offers %q, the update endpoint %q; want the stable %s", seed, capgo, fl.stable.Version)
	}
	if got := fl.capgoVersion(t, other); got != fl.cand.Version {
		t.Errorf("another device is offered %q, want the candidate", got)
	}
	// The bound is in the state, so it holds after a restart and for
	// every tracker sharing it.
	ctx := context.Background()
	if failed, err := fl.srv.state.Failed(ctx, fl.app, d, fl.cand.Version); err != nil || !failed {
		t.Errorf("the state does not hold the retry bound: %v, %v", failed, err)
	}
	if failed, _ := fl.srv.state.Failed(ctx, fl.app, other, fl.cand.Version); failed {
		t.Error("the state bounds another device")
	}
}

// TestChannelAPI plays the plugin's channelUrl calls: listChannels shows
// only channels whose signed settings allow self-assignment, setChannel
// refuses the others, and a device that chose a channel is answered from
// it by the update endpoint until unsetChannel.
func TestChannelAPI(t *testing.T) {
	f := newFixture(t)
	f.publish("retailer", "production", "1.0.0")
	f.publish("retailer", "internal", "1.2.0")
	beta := f.publish("retailer", "beta", "1.1.0")
	f.pointer(manifest.Latest{App: "retailer", Channel: "beta", Build: beta, Settings: manifest.Settings{SelfAssign: true}})
	_, base := startServer(t, f.config(t))
	ch := base + "/capgo/retailer/channel"
	updates := base + "/capgo/retailer/updates"
	req := pluginRequest(deviceA, "builtin", "1.0.0")

	_, body := do(t, nil, "GET", ch+"?device_id="+deviceA+"&app_id=com.cartona.retailer", nil)
	list := decode[[]map[string]any](t, body)
	if len(list) != 1 || list[0]["name"] != "beta" || list[0]["id"] != "beta" || list[0]["allow_self_set"] != true {
		t.Errorf("listChannels = %s, want beta only", body)
	}

	req["channel"] = "internal"
	_, body = do(t, nil, "POST", ch, mustJSON(t, req))
	if ans := decode[map[string]any](t, body); ans["error"] != "channel_self_set_not_allowed" || ans["message"] == "" {
		t.Errorf("setChannel internal = %s, want a refusal", body)
	}
	req["channel"] = "nightly"
	_, body = do(t, nil, "POST", ch, mustJSON(t, req))
	if ans := decode[map[string]any](t, body); ans["error"] != "channel_not_found" {
		t.Errorf("setChannel nightly = %s, want channel_not_found", body)
	}

	delete(req, "channel")
	getChannel := func() map[string]any {
		_, body := do(t, nil, "PUT", ch, mustJSON(t, req))
		return decode[map[string]any](t, body)
	}
	// allowSet says whether the channel answered lets devices choose it,
	// as Capgo's own server answers it; the plugin takes a missing one
	// for true.
	if got := getChannel(); got["channel"] != "production" || got["status"] != "default" || got["allowSet"] != false {
		t.Errorf("getChannel before = %v", got)
	}
	req["channel"] = "beta"
	if resp, body := do(t, nil, "POST", ch, mustJSON(t, req)); resp.StatusCode != 200 || decode[map[string]any](t, body)["status"] != "ok" {
		t.Fatalf("setChannel beta: %s %s", resp.Status, body)
	}
	delete(req, "channel")
	if got := getChannel(); got["channel"] != "beta" || got["status"] != "override" || got["allowSet"] != true {
		t.Errorf("getChannel after setChannel = %v", got)
	}
	if _, body := do(t, nil, "POST", updates, mustJSON(t, req)); decode[map[string]any](t, body)["version"] != "1.1.0" {
		t.Errorf("update after setChannel beta = %s", body)
	}
	if resp, body := do(t, nil, "DELETE", ch, mustJSON(t, req)); resp.StatusCode != 200 {
		t.Fatalf("unsetChannel: %s %s", resp.Status, body)
	}
	if _, body := do(t, nil, "POST", updates, mustJSON(t, req)); decode[map[string]any](t, body)["version"] != "1.0.0" {
		t.Errorf("update after unsetChannel = %s", body)
	}
}
