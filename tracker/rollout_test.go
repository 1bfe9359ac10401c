package tracker

import (
	"context"
	"fmt"
	"io"
	"math"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/cartona/deploy/dashboard"
	"github.com/cartona/deploy/manifest"
	"github.com/cartona/deploy/state"
	"github.com/cartona/deploy/store"
)

// fleet is a staged rollout on the fixture's store and a tracker serving it.
type fleet struct {
	f               *fixture
	srv             *Server
	base            string
	stable, cand    manifest.BuildRef
	devices         []string
	app, channel, r string
}

// newFleet publishes a stable build and a candidate at percent, and starts
// a tracker whose halt key the ACL grants can_halt.
func newFleet(t *testing.T, percent int64, configure ...func(*Config)) *fleet {
	f := newFixture(t)
	f.halter = newKey(t)
	f.writeACL()
	fl := &fleet{f: f, app: "retailer", channel: "production", r: "r1"}
	fl.stable = f.publish(fl.app, fl.channel, "1.0.0")
	fl.cand = f.publish(fl.app, fl.channel, "1.1.0")
	fl.setPercent(percent)
	for i := range 1000 {
		fl.devices = append(fl.devices, fmt.Sprintf("device-%04d", i))
	}
	cfg := f.config(t)
	cfg.StatsToken = "tok"
	cfg.Halt = HaltPolicy{Key: f.halter}
	for _, c := range configure {
		c(&cfg)
	}
	fl.srv, fl.base = startServer(t, cfg)
	return fl
}

// setPercent signs a pointer with the candidate at percent.
func (fl *fleet) setPercent(percent int64) {
	fl.f.pointer(manifest.Latest{App: fl.app, Channel: fl.channel, Build: fl.stable,
		Candidate: &manifest.Candidate{Build: fl.cand, Percent: percent, Rollout: fl.r}})
}

// seedVersion is the version /build/latest offers a device ("" for none).
func (fl *fleet) seedVersion(t *testing.T, device string) string {
	q := url.Values{"app": {fl.app}, "device": {device}, "native": {"2.0.0"}}
	resp, body := do(t, nil, "GET", fl.base+"/build/latest?"+q.Encode(), nil)
	if resp.StatusCode != 200 {
		t.Fatalf("latest: %s %s", resp.Status, body)
	}
	ans := decode[struct {
		Build *struct{ Build string }
	}](t, body)
	if ans.Build == nil {
		return ""
	}
	return ans.Build.Build
}

// capgoVersion is the version the plugin's update endpoint offers a device
// running builtin ("" for none).
func (fl *fleet) capgoVersion(t *testing.T, device string) string {
	_, body := do(t, nil, "POST", fl.base+"/capgo/"+fl.app+"/updates", mustJSON(t, pluginRequest(device, "builtin", "2.0.0")))
	v, _ := decode[map[string]any](t, body)["version"].(string)
	return v
}

// candidates checks every device through both APIs, which must agree, and
// returns the devices offered the candidate.
func (fl *fleet) candidates(t *testing.T) map[string]bool {
	t.Helper()
	out := map[string]bool{}
	for _, d := range fl.devices {
		seed, capgo := fl.seedVersion(t, d), fl.capgoVersion(t, d)
		if seed != capgo {
			t.Fatalf("device %s: /build/latest offers %q, the update endpoint %q", d, seed, capgo)
		}
		switch seed {
		case fl.cand.Version:
			out[d] = true
		case fl.stable.Version:
		default:
			t.Fatalf("device %s offered %q", d, seed)
		}
	}
	return out
}

// waitSequence waits until the tracker serves the channel's sequence seq.
func (fl *fleet) waitSequence(t *testing.T, seq int64) {
	t.Helper()
	for range 500 {
		rel, err := fl.srv.man.release(context.Background(), fl.app, fl.channel)
		if err == nil && rel.pointer.Sequence >= seq {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("the tracker never served sequence %d", seq)
}

// storePointer verifies the store's latest.json as a device reading the CDN
// does.
// haltedInStore waits until the store's pointer is a halt (the tracker
// writes it in the background) and returns it.
func (fl *fleet) haltedInStore(t *testing.T) *manifest.Latest {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		if l := fl.storePointer(t); l.Halted != nil || time.Now().After(deadline) {
			return l
		}
	}
}

func (fl *fleet) storePointer(t *testing.T) *manifest.Latest {
	t.Helper()
	l, _, err := fl.f.trust.VerifyLatest(fl.f.get(manifest.ACLKey), fl.f.get(manifest.LatestKey(fl.app, fl.channel)),
		manifest.Expect{App: fl.app, Channel: fl.channel, Now: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// TestFleetRolloutAndHalt: 1,000 devices during a 10 % rollout get the
// candidate at 10 % ± 2 %, exactly the cohort the format defines, through
// both APIs; raising to 50 % keeps every device that had it; one failure is
// not enough to halt, a burst of set_fail is: from then on no device gets
// the candidate through either API, and the store holds a halt, signed by
// the tracker's can_halt key, that devices reading the CDN verify into a
// pointer without the candidate.
func TestFleetRolloutAndHalt(t *testing.T) {
	fl := newFleet(t, 10)
	fl.wantDashboard(t, `"rollout":{"id":"r1","candidate":{"id":"retailer-2"`, `"percent":10,"state":"running"`)
	at10 := fl.candidates(t)
	if n := len(at10); n < 80 || n > 120 {
		t.Errorf("%d of 1000 devices got the candidate at 10 %%, want 100 ± 20", n)
	}
	for _, d := range fl.devices {
		c := manifest.Candidate{Percent: 10, Rollout: fl.r}
		if manifest.InCohort(fl.app, fl.channel, &c, d) != at10[d] {
			t.Fatalf("device %s: offered the candidate %v, its cohort says otherwise", d, at10[d])
		}
	}

	fl.setPercent(50)
	fl.waitSequence(t, 4)
	at50 := fl.candidates(t)
	for d := range at10 {
		if !at50[d] {
			t.Errorf("device %s lost the candidate when the rollout grew to 50 %%", d)
		}
	}
	if n := len(at50); n < 480 || n > 520 {
		t.Errorf("%d of 1000 devices got the candidate at 50 %%, want 500 ± 20", n)
	}
	if err := fl.srv.state.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}

	var failing []string
	for d := range at50 {
		failing = append(failing, d)
	}
	fl.reportFailures(t, failing[:1], "set_fail")
	if got := fl.capgoVersion(t, failing[1]); got != fl.cand.Version {
		t.Fatalf("one failure in %d devices halted the candidate (offered %q)", len(at50), got)
	}
	fl.reportFailures(t, failing[1:40], "set_fail")

	if got := fl.candidates(t); len(got) != 0 {
		t.Errorf("%d devices still get the halted candidate", len(got))
	}
	l := fl.haltedInStore(t)
	if l.Halted == nil || l.Candidate != nil || l.Sequence != 5 {
		t.Fatalf("store pointer after the halt: halted %v, candidate %v, sequence %d", l.Halted != nil, l.Candidate, l.Sequence)
	}
	for _, d := range fl.devices {
		if sel := l.Select("2.0.0", d); sel.Build == nil || sel.Build.ID != fl.stable.ID {
			t.Fatalf("a device reading the CDN selects %+v after the halt", sel)
		}
	}
	if hist := fl.f.get(manifest.HistoryKey(fl.app, fl.channel, 5)); string(hist) != string(fl.f.get(manifest.LatestKey(fl.app, fl.channel))) {
		t.Error("the halt is not in the channel's history")
	}

	// Every device here checks from one address, one network: its 40
	// failures weigh as DefaultHaltPerNetwork devices with its rate.
	weighed := 40 * DefaultHaltPerNetwork / float64(len(at50))
	fl.wantDashboard(t, fmt.Sprintf(`"percent":50,"state":"halted","why":"%.1f of %d devices`, weighed, DefaultHaltPerNetwork),
		fmt.Sprintf(`(%d devices reported`, len(at50)))

	// An uploader who publishes the halted rollout again, unaware, gets it
	// halted again in the store: a halt holds for its rollout id.
	fl.f.seq[fl.app+"/"+fl.channel] = 5 // publish continues after the halt
	fl.setPercent(100)
	for i := 0; ; i++ {
		if l := fl.storePointer(t); l.Halted != nil && l.Sequence == 7 {
			break
		}
		if i == 1000 {
			t.Fatal("the halted rollout published again was not halted again in the store")
		}
		fl.capgoVersion(t, fl.devices[0]) // the tracker reads the new pointer as devices ask
		time.Sleep(5 * time.Millisecond)
	}
	if got := fl.candidates(t); len(got) != 0 {
		t.Errorf("%d devices get the rollout published again after its halt", len(got))
	}
	if _, body := do(t, nil, "GET", fl.base+"/metrics", nil); !strings.Contains(string(body), `deploy_tracker_rollout_halts_total{app="retailer",channel="production"} 1`) {
		t.Error("the halt is not counted in the metrics")
	}
	st, err := GetStats(context.Background(), nil, fl.base, "tok", fl.app)
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Rollouts) != 1 || st.Rollouts[0].State != dashboard.Halted || st.Rollouts[0].Failed != int64(math.Round(weighed)) ||
		st.Rollouts[0].Reported != int64(len(at50)) || st.Rollouts[0].Reason == "" {
		t.Errorf("stats rollouts = %+v, want the halted rollout with %d devices, 40 failed, weighed as %.1f", st.Rollouts, len(at50), weighed)
	}
}

// wantDashboard checks that the dashboard's channel list of the app holds
// each of want.
func (fl *fleet) wantDashboard(t *testing.T, want ...string) {
	t.Helper()
	_, body := do(t, nil, "GET", fl.base+"/api/apps/"+fl.app, nil, "Authorization", "Bearer tok")
	for _, w := range want {
		if !strings.Contains(string(body), w) {
			t.Errorf("dashboard %s lacks %s", body, w)
		}
	}
}

// reportFailures sends one failure event per device for the candidate.
func (fl *fleet) reportFailures(t *testing.T, devices []string, action string) {
	t.Helper()
	evs := make([]map[string]any, 0, len(devices))
	for i, d := range devices {
		evs = append(evs, pluginEvent(d, action, fl.cand.Version, 1700000000000+int64(i)))
	}
	if resp, body := do(t, nil, "POST", fl.base+"/capgo/"+fl.app+"/stats", mustJSON(t, evs)); resp.StatusCode != 200 {
		t.Fatalf("stats: %s %s", resp.Status, body)
	}
}

// TestHaltOverPendingPointer: an uploader claimed the next sequence in the
// history but has not swapped latest.json yet. The tracker swaps that
// pointer in, as publish does, and halts on top of it.
func TestHaltOverPendingPointer(t *testing.T) {
	fl := newFleet(t, 100, func(c *Config) { c.Halt.MinDevices = 1 })
	cur := fl.f.get(manifest.LatestKey(fl.app, fl.channel))
	link := manifest.LinkTo(3, cur)
	now := time.Now().UTC()
	pending := manifest.Latest{App: fl.app, Channel: fl.channel, Sequence: 4, Issued: now, Expires: now.Add(time.Hour), Build: fl.stable,
		Candidate: &manifest.Candidate{Build: fl.cand, Percent: 100, Rollout: fl.r}, Notes: "pending", Previous: &link}
	fl.f.put(manifest.HistoryKey(fl.app, fl.channel, 4), fl.f.sign(manifest.TypeLatest, pending, fl.f.user))

	fl.capgoVersion(t, fl.devices[0]) // the tracker watches the candidate once it serves it
	fl.reportFailures(t, fl.devices[:1], "unzip_fail")
	l := fl.haltedInStore(t)
	if l.Halted == nil || l.Sequence != 5 || l.Notes != "pending" {
		t.Fatalf("store pointer: halted %v, sequence %d, notes %q; want a halt of the pending pointer 4", l.Halted != nil, l.Sequence, l.Notes)
	}
}

// blockedPuts is a store whose writes wait until release is closed.
type blockedPuts struct {
	store.Store
	waiting chan struct{} // receives when a write waits
	release chan struct{}
}

func (s *blockedPuts) Put(ctx context.Context, key string, r io.Reader, opt store.PutOptions) (store.Info, error) {
	s.waiting <- struct{}{}
	select {
	case <-s.release:
		return s.Store.Put(ctx, key, r, opt)
	case <-ctx.Done():
		return store.Info{}, ctx.Err()
	}
}

// TestHaltDoesNotWaitForTheStore: the report that halts a rollout is
// answered, and no device gets the candidate, while the halt is still
// being written to the store (the store answers only after that); the
// store gets it once it answers.
func TestHaltDoesNotWaitForTheStore(t *testing.T) {
	blocked := &blockedPuts{waiting: make(chan struct{}, 100), release: make(chan struct{})}
	fl := newFleet(t, 100, func(c *Config) {
		blocked.Store = c.Store
		c.Store = blocked
		c.Halt.MinDevices = 1
	})
	fl.capgoVersion(t, fl.devices[0]) // the tracker watches the candidate once it serves it
	fl.reportFailures(t, fl.devices[:1], "unzip_fail")
	<-blocked.waiting // the halt is being written
	if got := fl.capgoVersion(t, fl.devices[1]); got != fl.stable.Version {
		t.Errorf("while the halt is written, a device is offered %q, want the stable %s", got, fl.stable.Version)
	}
	close(blocked.release)
	if l := fl.haltedInStore(t); l.Halted == nil {
		t.Fatal("the halt never reached the store")
	}
}

// TestHaltWithoutKey: a tracker with no halt key stops offering a failing
// candidate and says so in its stats, and leaves the store alone.
func TestHaltWithoutKey(t *testing.T) {
	fl := newFleet(t, 100, func(c *Config) { c.Halt.Key = nil })
	before := fl.f.get(manifest.LatestKey(fl.app, fl.channel))
	for _, d := range fl.devices[:20] {
		fl.capgoVersion(t, d)
	}
	if err := fl.srv.state.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	fl.reportFailures(t, fl.devices[:1], "app_crash_native")
	if got := fl.seedVersion(t, fl.devices[5]); got != fl.cand.Version {
		t.Fatalf("1 failure in 20 devices (5 %%, not more) halted the candidate: offered %q", got)
	}
	fl.reportFailures(t, fl.devices[1:2], "update_fail")
	if got := fl.seedVersion(t, fl.devices[5]); got != fl.stable.Version {
		t.Errorf("2 failures in 20 devices: offered %q, want the stable build", got)
	}
	if after := fl.f.get(manifest.LatestKey(fl.app, fl.channel)); string(after) != string(before) {
		t.Error("a tracker without a halt key wrote to the store")
	}
	st, err := GetStats(context.Background(), nil, fl.base, "tok", fl.app)
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Rollouts) != 1 || st.Rollouts[0].State != dashboard.Halted || st.Rollouts[0].InStore {
		t.Errorf("stats rollouts = %+v, want halted on the tracker only", st.Rollouts)
	}
}

// TestHaltWhenDevicesComeAfterFailures: failures reported while too few
// devices have the candidate halt it once enough devices have it, without
// waiting for another failure.
func TestHaltWhenDevicesComeAfterFailures(t *testing.T) {
	fl := newFleet(t, 100, func(c *Config) { c.Halt.Key = nil })
	for _, d := range fl.devices[:2] {
		fl.capgoVersion(t, d)
	}
	if err := fl.srv.state.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	fl.reportFailures(t, fl.devices[:2], "update_fail")
	if got := fl.seedVersion(t, fl.devices[2]); got != fl.cand.Version {
		t.Fatalf("2 failures in 3 devices, under the 20 the policy waits for, halted the candidate: offered %q", got)
	}
	for _, d := range fl.devices[3:25] {
		fl.capgoVersion(t, d)
	}
	if err := fl.srv.state.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	fl.capgoVersion(t, fl.devices[25]) // 25 devices, 2 failed: 8 %
	if got := fl.seedVersion(t, fl.devices[26]); got != fl.stable.Version {
		t.Errorf("2 failures in 25 devices, over 5 %%: offered %q, want the stable build", got)
	}
}

// TestHaltWhenFailuresReachAnotherTracker: failures stored by another
// tracker sharing the state (straight into it here), devices checking
// with this one: no event this tracker sees crosses the threshold, and
// its sweep halts the candidate.
func TestHaltWhenFailuresReachAnotherTracker(t *testing.T) {
	defer func(d time.Duration) { sweepEvery = d }(sweepEvery)
	sweepEvery = 20 * time.Millisecond
	fl := newFleet(t, 100, func(c *Config) { c.Halt.Key = nil })
	ctx := context.Background()
	for _, d := range fl.devices[:25] {
		fl.capgoVersion(t, d)
	}
	var failures []state.Event
	for _, d := range fl.devices[:2] {
		failures = append(failures, state.Event{App: fl.app, Device: d, Action: "update_fail", Version: fl.cand.Version, TS: 1700000000000, Source: "capgo"})
	}
	if err := fl.srv.state.Record(ctx, failures...); err != nil {
		t.Fatal(err)
	}
	if err := fl.srv.state.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for fl.seedVersion(t, fl.devices[30]) != fl.stable.Version {
		if time.Now().After(deadline) {
			t.Fatal("2 failures in 25 devices, over 5 %, stored by another tracker: the candidate is still offered after 5 s")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestAPITimes: every time the operators' API answers is RFC 3339 in UTC
// in whole seconds, as docs/api.md shows them, though the tracker's clock
// and the signed pointers (issued, expires) carry fractions of a second:
// when each answer was generated, when a rollout was halted, a channel's
// pointer, the history and the adoption buckets.
func TestAPITimes(t *testing.T) {
	fl := newFleet(t, 100, func(c *Config) {
		c.Halt.MinDevices = 1
		c.Now = func() time.Time { return time.Now().Truncate(time.Second).Add(123456789) }
	})
	cur := fl.f.get(manifest.LatestKey(fl.app, fl.channel))
	fl.f.put(manifest.HistoryKey(fl.app, fl.channel, 3), cur) // the pointer the halt follows, issued with a fraction
	fl.capgoVersion(t, fl.devices[0])                         // the tracker watches the candidate once it serves it
	if resp, body := do(t, nil, "GET", fl.base+"/build/download/complete?id="+fl.cand.ID+"&device="+fl.devices[0], nil); resp.StatusCode != 200 {
		t.Fatalf("complete: %s %s", resp.Status, body)
	}
	fl.reportFailures(t, fl.devices[:1], "unzip_fail")
	fl.haltedInStore(t)

	whole := regexp.MustCompile(`^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z$`)
	seen := map[string]bool{}
	var walk func(path string, key string, v any)
	walk = func(path, key string, v any) {
		switch v := v.(type) {
		case map[string]any:
			for k, x := range v {
				walk(path+"."+k, k, x)
			}
		case []any:
			for i, x := range v {
				walk(fmt.Sprintf("%s[%d]", path, i), key, x)
			}
		case string:
			if _, err := time.Parse(time.RFC3339Nano, v); err != nil {
				return
			}
			seen[key] = true
			if !whole.MatchString(v) {
				t.Errorf("%s is %q, want RFC 3339 in UTC in whole seconds", path, v)
			}
		}
	}
	for _, path := range []string{"/api/stats", "/api/stats?app=" + fl.app, "/api/apps/" + fl.app,
		"/api/apps/" + fl.app + "/channels/" + fl.channel + "/history", "/api/apps/" + fl.app + "/adoption"} {
		resp, body := do(t, nil, "GET", fl.base+path, nil, "Authorization", "Bearer tok")
		if resp.StatusCode != 200 {
			t.Fatalf("GET %s: %s %s", path, resp.Status, body)
		}
		walk(path, "", decode[any](t, body))
	}
	for _, key := range []string{"generated", "halted_at", "issued", "expires", "times"} {
		if !seen[key] {
			t.Errorf("no answer had a time in %q", key)
		}
	}
}
