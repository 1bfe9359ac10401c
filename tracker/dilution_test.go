package tracker

import (
	"context"
	"fmt"
	"testing"

	"github.com/cartona/deploy/dashboard"
	"github.com/cartona/deploy/state"
)

// from sends a device's update check through the plugin's updateUrl from
// the client address addr (the tracker trusts X-Forwarded-For here) and
// returns the version offered ("" for none).
func (fl *fleet) checkFrom(t *testing.T, addr, device string) string {
	t.Helper()
	resp, body := do(t, nil, "POST", fl.base+"/capgo/"+fl.app+"/updates", mustJSON(t, pluginRequest(device, "builtin", "2.0.0")),
		"X-Forwarded-For", addr)
	if resp.StatusCode != 200 {
		t.Fatalf("update check: %s %s", resp.Status, body)
	}
	v, _ := decode[map[string]any](t, body)["version"].(string)
	return v
}

// reportFrom sends one event per device for the candidate from addr.
func (fl *fleet) reportFrom(t *testing.T, addr, action string, devices []string) {
	t.Helper()
	evs := make([]map[string]any, 0, len(devices))
	for i, d := range devices {
		evs = append(evs, pluginEvent(d, action, fl.cand.Version, 1700000000000+int64(i)))
	}
	if resp, body := do(t, nil, "POST", fl.base+"/capgo/"+fl.app+"/stats", mustJSON(t, evs), "X-Forwarded-For", addr); resp.StatusCode != 200 {
		t.Fatalf("stats: %s %s", resp.Status, body)
	}
}

func (fl *fleet) rollout(t *testing.T) RolloutHealth {
	t.Helper()
	if err := fl.srv.state.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	st, err := GetStats(context.Background(), nil, fl.base, "tok", fl.app)
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Rollouts) != 1 {
		t.Fatalf("stats rollouts = %+v, want one", st.Rollouts)
	}
	return st.Rollouts[0]
}

// TestForgedSuccessesDoNotStopAHalt plays the dilution attack: a 20 %
// rollout, 150 devices checking from their own addresses (about 30 get the
// candidate), then 1,000 made-up device ids reporting that they run it, in
// 10 requests of 100 from one address, then 12 of the real candidate
// devices reporting update_fail. The made-up ids weigh as one network's
// worth of devices at most, so the failures (12 of about 30 real devices)
// still halt the rollout, and no cohort device is offered the candidate.
func TestForgedSuccessesDoNotStopAHalt(t *testing.T) {
	fl := newFleet(t, 20, func(c *Config) { c.TrustProxy, c.Halt.Key = true, nil })
	var got []string
	for i, d := range fl.devices[:150] {
		if fl.checkFrom(t, fmt.Sprintf("198.51.%d.%d", i/100, i%100+1), d) == fl.cand.Version {
			got = append(got, d)
		}
	}
	if len(got) < 20 {
		t.Fatalf("%d of 150 devices got the candidate at 20 %%", len(got))
	}
	for i := range 10 {
		forged := make([]string, 100)
		for j := range forged {
			forged[j] = fmt.Sprintf("forged-%d-%d", i, j)
		}
		fl.reportFrom(t, "203.0.113.7", "set", forged)
	}
	for i, d := range got[:12] {
		fl.reportFrom(t, fmt.Sprintf("192.0.2.%d", i+1), state.ActionUpdateFail, []string{d})
	}
	ro := fl.rollout(t)
	if ro.State != dashboard.Halted {
		t.Errorf("12 of %d real devices failed, 1,000 made-up ids from one address said they run the candidate: rollout %+v, want halted", len(got), ro)
	}
	// The made-up ids in the cohort (about 200) are reported; they weigh
	// as DefaultHaltPerNetwork devices.
	if ro.Reported < int64(len(got))+100 || ro.Devices != int64(len(got))+DefaultHaltPerNetwork || ro.Failed != 12 {
		t.Errorf("rollout counts %+v: want the made-up ids in the cohort reported, and %d real devices plus %d for their network", ro, len(got), DefaultHaltPerNetwork)
	}
	for _, d := range got[12:] {
		if v := fl.checkFrom(t, "198.51.7.1", d); v != fl.stable.Version {
			t.Fatalf("cohort device %s is offered %q after the halt, want the stable build", d, v)
		}
	}
}

// TestHonestFleetDoesNotHalt: 1,000 devices in a 50 % rollout behind 40
// networks, one of them a carrier NAT with a quarter of the fleet, and
// 1 failure in 40 candidate devices (2.5 %, under the 5 % policy): the
// weighing of networks keeps the rollout running. A fleet behind a single
// network that does fail (10 %) is halted as before.
func TestHonestFleetDoesNotHalt(t *testing.T) {
	fl := newFleet(t, 50, func(c *Config) { c.TrustProxy, c.Halt.Key = true, nil })
	addr := func(i int) string {
		if i%4 == 0 {
			return fmt.Sprintf("100.64.0.%d", i%250+1) // the NAT: one /24
		}
		return fmt.Sprintf("10.%d.0.%d", i%40, i%200+1)
	}
	var got []int
	for i, d := range fl.devices {
		if fl.checkFrom(t, addr(i), d) == fl.cand.Version {
			got = append(got, i)
		}
	}
	for n, i := range got {
		action := "set"
		if n%40 == 0 {
			action = state.ActionUpdateFail
		}
		fl.reportFrom(t, addr(i), action, []string{fl.devices[i]})
	}
	ro := fl.rollout(t)
	if ro.State != dashboard.Running || ro.Reported != int64(len(got)) || ro.Devices >= ro.Reported {
		t.Errorf("an honest fleet with 2.5 %% failures: rollout %+v, want running with %d devices reported and the NAT weighed", ro, len(got))
	}

	one := newFleet(t, 100, func(c *Config) { c.TrustProxy, c.Halt.Key = true, nil })
	for i, d := range one.devices[:200] {
		one.checkFrom(t, "100.64.9.1", d)
		if i%10 == 0 {
			one.reportFrom(t, "100.64.9.1", state.ActionUpdateFail, []string{d})
		}
	}
	if ro := one.rollout(t); ro.State != dashboard.Halted {
		t.Errorf("200 devices behind one address, 10 %% failed: rollout %+v, want halted", ro)
	}
}

// TestLargeThresholdGivesForgedIdsNoMoreWeight: raising halt_min_devices
// for a large fleet must not let one network's made-up ids weigh more.
// With a threshold of 100, about 100 real candidate devices in their own
// networks, 9 % of them failing, and 1,000 made-up successes from one
// address, the rollout halts: the made-up ids weigh 50, not 100.
func TestLargeThresholdGivesForgedIdsNoMoreWeight(t *testing.T) {
	fl := newFleet(t, 20, func(c *Config) { c.TrustProxy, c.Halt.Key, c.Halt.MinDevices = true, nil, 100 })
	var got []string
	for i, d := range fl.devices[:500] {
		if fl.checkFrom(t, fmt.Sprintf("10.%d.%d.1", i/200, i%200), d) == fl.cand.Version {
			got = append(got, d)
		}
	}
	for i := range 10 {
		forged := make([]string, 100)
		for j := range forged {
			forged[j] = fmt.Sprintf("forged-%d-%d", i, j)
		}
		fl.reportFrom(t, "203.0.113.7", "set", forged)
	}
	failed := len(got)*9/100 + 1
	for i, d := range got[:failed] {
		fl.reportFrom(t, fmt.Sprintf("192.0.2.%d", i+1), state.ActionUpdateFail, []string{d})
	}
	ro := fl.rollout(t)
	if ro.State != dashboard.Halted || ro.Devices != int64(len(got))+DefaultHaltPerNetwork {
		t.Errorf("%d of %d real devices failed, 1,000 made-up successes from one address, halt_min_devices=100: rollout %+v, want halted with the made-up ids weighing %d",
			failed, len(got), ro, DefaultHaltPerNetwork)
	}
}
