package tracker

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/cartona/deploy/internal/s3test"
	"github.com/cartona/deploy/store/s3"
)

// serialClient sends every request on one keep-alive connection. The
// server reads a connection's next request only after the previous
// handler, metrics included, has returned, so a scrape sees every request
// made before it.
func serialClient() *http.Client {
	return &http.Client{Transport: &http.Transport{MaxConnsPerHost: 1, MaxIdleConnsPerHost: 1}}
}

// samples is a scrape: values by `name{label="value",...}`, labels sorted;
// a histogram gives name_count and name_sum.
type samples map[string]float64

func scrape(t *testing.T, c *http.Client, url string) samples {
	t.Helper()
	resp, body := do(t, c, "GET", url, nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %s", url, resp.StatusCode, body)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(string(body)))
	if err != nil {
		t.Fatalf("parse %s: %v\n%s", url, err, body)
	}
	s := samples{}
	for name, fam := range fams {
		for _, m := range fam.Metric {
			var labels []string
			for _, l := range m.Label {
				labels = append(labels, fmt.Sprintf("%s=%q", l.GetName(), l.GetValue()))
			}
			slices.Sort(labels)
			key := name + "{" + strings.Join(labels, ",") + "}"
			switch {
			case m.Counter != nil:
				s[key] = m.Counter.GetValue()
			case m.Gauge != nil:
				s[key] = m.Gauge.GetValue()
			case m.Histogram != nil:
				s[strings.Replace(key, "{", "_count{", 1)] = float64(m.Histogram.GetSampleCount())
				s[strings.Replace(key, "{", "_sum{", 1)] = m.Histogram.GetSampleSum()
			}
		}
	}
	return s
}

// moved checks how much each sample grew from before to after.
func moved(t *testing.T, before, after samples, want map[string]float64) {
	t.Helper()
	for key, d := range want {
		if got := after[key] - before[key]; got != d {
			t.Errorf("%s grew by %v, want %v", key, got, d)
		}
	}
}

// TestMetrics scrapes a tracker on loopback, makes requests and scrapes
// again: requests and latencies move under their route pattern and status,
// and so do verified and refused manifests, cache lookups, rate-limited
// requests and committed events.
// threeEventsPosted is what one stats request of three events and the
// scrape after it move, and more.
func threeEventsPosted(more map[string]float64) map[string]float64 {
	m := map[string]float64{
		`deploy_tracker_http_requests_total{route="POST /capgo/{app}/stats",status="200"}`:                 1,
		`deploy_tracker_http_request_duration_seconds_count{route="POST /capgo/{app}/stats",status="200"}`: 1,
		`deploy_tracker_http_requests_total{route="GET /metrics",status="200"}`:                            1,
		`deploy_tracker_events_ingested_total{}`:                                                           3,
		`deploy_tracker_event_commit_batch_events_count{}`:                                                 1,
		`deploy_tracker_event_commit_batch_events_sum{}`:                                                   3,
		`deploy_tracker_event_commit_duration_seconds_count{}`:                                             1,
	}
	maps.Copy(m, more)
	return m
}

func TestMetrics(t *testing.T) {
	f := newFixture(t)
	f.publish("retailer", "production", "1.0.0")
	owner := f.user
	f.user = newKey(t) // a key the ACL does not hold
	f.publish("rogue", "production", "1.0.0")
	f.user = owner
	cfg := f.config(t)
	cfg.CacheTTL = time.Hour // a second read of a channel is a hit
	cfg.Limits = Limits{DeviceRate: 1e-6, DeviceBurst: 2, AddrRate: -1}
	_, base := startServer(t, cfg)
	c := serialClient()
	metrics := base + "/metrics"

	s0 := scrape(t, c, metrics)
	events := `[{"device_id":"dev-1","app_id":"com.x","action":"set","version_name":"1.0.0","version_build":"1.0","platform":"android","plugin_version":"8.51.14","timestamp":%d},
		{"device_id":"dev-2","app_id":"com.x","action":"set","version_name":"1.0.0","version_build":"1.0","platform":"android","plugin_version":"8.51.14","timestamp":%[1]d},
		{"device_id":"dev-3","app_id":"com.x","action":"set","version_name":"1.0.0","version_build":"1.0","platform":"android","plugin_version":"8.51.14","timestamp":%[1]d}]`
	if resp, body := do(t, c, "POST", base+"/capgo/retailer/stats", fmt.Appendf(nil, events, time.Now().UnixMilli())); resp.StatusCode != http.StatusOK {
		t.Fatalf("stats: %d %s", resp.StatusCode, body)
	}
	s1 := scrape(t, c, metrics)
	moved(t, s0, s1, threeEventsPosted(nil))

	// Devices that rejected a manifest, by the rule their metadata names;
	// metadata of another shape does not make the event invalid.
	rejected := `[{"device_id":"dev-4","app_id":"com.x","action":"verify_fail","version_name":"1.0.0","timestamp":%d,"metadata":{"rule":"bad_signature","detail":"x","channel":"production"}},
		{"device_id":"dev-5","app_id":"com.x","action":"verify_fail","version_name":"1.0.0","timestamp":%[1]d,"metadata":{"rule":"made_up"}},
		{"device_id":"dev-6","app_id":"com.x","action":"verify_fail","version_name":"1.0.0","timestamp":%[1]d,"metadata":"a string"}]`
	if resp, body := do(t, c, "POST", base+"/capgo/retailer/stats", fmt.Appendf(nil, rejected, time.Now().UnixMilli())); resp.StatusCode != http.StatusOK || strings.Contains(string(body), "ignored") {
		t.Fatalf("verify_fail stats: %d %s", resp.StatusCode, body)
	}
	s15 := scrape(t, c, metrics)
	moved(t, s1, s15, threeEventsPosted(map[string]float64{
		`deploy_tracker_device_verify_failures_total{rule="bad_signature"}`: 1,
		`deploy_tracker_device_verify_failures_total{rule="other"}`:         2,
	}))
	s1 = s15

	latest := base + "/build/latest?app=%s&device=" + deviceA
	for i, want := range []int{200, 200, 429} { // a burst of 2
		if resp, body := do(t, c, "GET", fmt.Sprintf(latest, "retailer"), nil); resp.StatusCode != want {
			t.Fatalf("request %d: %d %s, want %d", i, resp.StatusCode, body, want)
		}
	}
	if resp, _ := do(t, c, "GET", fmt.Sprintf(base+"/build/latest?app=rogue&device=%s", deviceB), nil); resp.StatusCode != 404 {
		t.Fatalf("rogue manifest: %d, want 404 (not_servable)", resp.StatusCode)
	}
	if resp, _ := do(t, c, "GET", base+"/no/such/path", nil); resp.StatusCode != 404 {
		t.Fatalf("unknown path: %d, want 404", resp.StatusCode)
	}
	if resp, _ := do(t, c, "DELETE", base+"/build/latest", nil); resp.StatusCode != 405 {
		t.Fatalf("DELETE: %d, want 405", resp.StatusCode)
	}
	s2 := scrape(t, c, metrics)
	moved(t, s1, s2, map[string]float64{
		`deploy_tracker_http_requests_total{route="GET /build/latest",status="200"}`:                 2,
		`deploy_tracker_http_request_duration_seconds_count{route="GET /build/latest",status="200"}`: 2,
		`deploy_tracker_http_requests_total{route="GET /build/latest",status="429"}`:                 1,
		`deploy_tracker_http_requests_total{route="GET /build/latest",status="404"}`:                 1,
		`deploy_tracker_http_requests_total{route="/",status="404"}`:                                 1,
		`deploy_tracker_http_requests_total{route="/build/latest",status="405"}`:                     1,
		`deploy_tracker_rate_limited_total{limit="device"}`:                                          1,
		`deploy_tracker_manifests_verified_total{kind="latest"}`:                                     1,
		`deploy_tracker_manifests_refused_total{kind="latest",rule="untrusted_key"}`:                 1,
		`deploy_tracker_cache_requests_total{cache="latest",result="miss"}`:                          2,
		`deploy_tracker_cache_requests_total{cache="latest",result="hit"}`:                           1,
	})
	for key := range s2 {
		if strings.Contains(key, "no/such") || strings.Contains(key, deviceA) || strings.Contains(key, "rogue") {
			t.Errorf("a label holds request data: %s", key)
		}
	}
}

// TestMetricsFromStart: the first scrape of a fresh tracker has every
// series whose labels are known up front, at 0, so that alerts using
// absent() or rate() see them before anything happens: manifests verified
// and refused by kind and rule, rate-limited requests by limit, cache
// lookups and the event store's commits. A channel's rollout halts are
// there at 0 once the tracker serves a staged rollout on it.
func TestMetricsFromStart(t *testing.T) {
	fl := newFleet(t, 10)
	c := serialClient()
	s := scrape(t, c, fl.base+"/metrics")
	var want []string
	for kind, rules := range map[string][]string{
		"acl":    {"too_large", "malformed", "unsigned", "bad_signature", "acl_untrusted", "acl_rollback"},
		"latest": {"too_large", "malformed", "unsigned", "acl_untrusted", "acl_rollback", "bad_signature", "untrusted_key", "app_mismatch", "channel_mismatch", "not_granted", "rollback", "expired"},
		"build":  {"too_large", "malformed", "unsigned", "bad_signature", "untrusted_key", "app_mismatch", "not_granted"},
	} {
		for _, rule := range rules {
			want = append(want, fmt.Sprintf(`deploy_tracker_manifests_refused_total{kind=%q,rule=%q}`, kind, rule))
		}
	}
	for _, kind := range []string{"latest", "build"} {
		want = append(want, fmt.Sprintf(`deploy_tracker_manifests_verified_total{kind=%q}`, kind))
	}
	for _, rule := range []string{"too_large", "malformed", "unsigned", "acl_untrusted", "acl_rollback", "bad_signature", "untrusted_key",
		"app_mismatch", "channel_mismatch", "not_granted", "rollback", "expired", "bundle_mismatch", "files_mismatch", "history_gap", "other"} {
		want = append(want, fmt.Sprintf(`deploy_tracker_device_verify_failures_total{rule=%q}`, rule))
	}
	for _, cache := range []string{"acl", "latest", "build"} {
		for _, result := range []string{"hit", "miss"} {
			want = append(want, fmt.Sprintf(`deploy_tracker_cache_requests_total{cache=%q,result=%q}`, cache, result))
		}
	}
	want = append(want,
		`deploy_tracker_rate_limited_total{limit="device"}`,
		`deploy_tracker_rate_limited_total{limit="address"}`,
		`deploy_tracker_rate_limited_total{limit="token"}`,
		`deploy_tracker_events_ingested_total{}`,
		`deploy_tracker_event_commit_failures_total{}`,
		`deploy_tracker_event_commit_batch_events_count{}`,
		`deploy_tracker_event_commit_duration_seconds_count{}`,
	)
	for _, key := range want {
		if v, ok := s[key]; !ok || v != 0 {
			t.Errorf("fresh tracker: %s is %v (present %v), want present at 0", key, v, ok)
		}
	}

	halts := `deploy_tracker_rollout_halts_total{app="retailer",channel="production"}`
	fl.seedVersion(t, fl.devices[0]) // the tracker reads the channel and its rollout
	if v, ok := scrape(t, c, fl.base+"/metrics")[halts]; !ok || v != 0 {
		t.Errorf("serving a staged rollout: %s is %v (present %v), want present at 0", halts, v, ok)
	}
}

// TestMetricsRateLimitedAddress: an address over its limit is counted
// under its own limit, and under the route it asked for, although the mux
// never saw the request.
func TestMetricsRateLimitedAddress(t *testing.T) {
	f := newFixture(t)
	cfg := f.config(t)
	cfg.Limits = Limits{DeviceRate: -1, AddrRate: 1e-6, AddrBurst: 1}
	_, base := startServer(t, cfg)
	c := serialClient()
	s0 := scrape(t, c, base+"/metrics") // not limited: scrapers call often
	for _, want := range []int{400, 429} {
		if resp, body := do(t, c, "GET", base+"/build/download", nil); resp.StatusCode != want {
			t.Fatalf("%d %s, want %d", resp.StatusCode, body, want)
		}
	}
	s1 := scrape(t, c, base+"/metrics")
	moved(t, s0, s1, map[string]float64{
		`deploy_tracker_rate_limited_total{limit="address"}`:                           1,
		`deploy_tracker_http_requests_total{route="GET /build/download",status="400"}`: 1,
		`deploy_tracker_http_requests_total{route="GET /build/download",status="429"}`: 1,
	})
}

// TestPrivateMetrics: with PrivateMetrics, /metrics is not on the devices'
// address but on the one ServeMetrics listens on, and counts the devices'
// requests.
func TestPrivateMetrics(t *testing.T) {
	f := newFixture(t)
	cfg := f.config(t)
	cfg.PrivateMetrics = true
	srv, base := startServer(t, cfg)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.ServeMetrics(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve metrics: %v", err)
		}
	})
	c := serialClient()
	if resp, body := do(t, c, "GET", base+"/metrics", nil); resp.StatusCode != http.StatusNotFound || !bytes.Contains(body, []byte(`"error":"no_route"`)) || !bytes.Contains(body, []byte("docs/api.md lists the tracker's routes")) {
		t.Errorf("/metrics on the devices' address: %d %s, want 404 naming where the routes are listed", resp.StatusCode, body)
	}
	do(t, c, "GET", base+"/healthz", nil) // answered once the 404 is counted
	s := scrape(t, c, "http://"+ln.Addr().String()+"/metrics")
	if got := s[`deploy_tracker_http_requests_total{route="/",status="404"}`]; got != 1 {
		t.Errorf("the private scrape counts %v requests answered 404 on the devices' address, want 1", got)
	}
	if resp, _ := do(t, c, "GET", "http://"+ln.Addr().String()+"/build/latest", nil); resp.StatusCode != http.StatusNotFound {
		t.Errorf("/build/latest on the metrics address: %d, want 404", resp.StatusCode)
	}
}

// TestReady: /readyz answers 503 while the store cannot be read (here its
// folder is replaced by a file, as when a volume is gone) and 200 again
// once it can, even empty, and 503 once the tracker state is closed;
// /healthz is liveness and stays 200 while the store is unreadable.
func TestReady(t *testing.T) {
	f := newFixture(t)
	f.publish("retailer", "production", "1.0.0")
	srv, base := startServer(t, f.config(t)) // the cache lasts 10 ms
	c := serialClient()
	waitStatus := func(path string, want int) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			resp, body := do(t, c, "GET", base+path, nil)
			if resp.StatusCode == want {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("GET %s: %d %s, want %d", path, resp.StatusCode, body, want)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	waitStatus("/readyz", 200)

	if err := os.RemoveAll(f.dir); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(f.dir, []byte("not a folder"), 0o644); err != nil {
		t.Fatal(err)
	}
	waitStatus("/readyz", 503)
	waitStatus("/healthz", 200)
	if err := os.Remove(f.dir); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(f.dir, 0o755); err != nil {
		t.Fatal(err)
	}
	waitStatus("/readyz", 200) // an empty store is reachable, only not initialised

	if err := srv.Close(); err != nil {
		t.Fatal(err)
	}
	waitStatus("/readyz", 503)
}

// TestReadyMissingBucket: an S3 store whose bucket does not exist is not
// ready, though S3 answers its HEAD of acl.json with the same bare 404 as
// for a store that is only not initialised; the answer says what is wrong.
func TestReadyMissingBucket(t *testing.T) {
	f := newFixture(t)
	srv := s3test.Start(t)
	srv.Setenv(t)
	open := func(bucket string) *s3.Store {
		t.Helper()
		nb := *srv
		nb.Bucket = bucket
		u, err := url.Parse(nb.URL("prod"))
		if err != nil {
			t.Fatal(err)
		}
		st, err := s3.Open(t.Context(), u)
		if err != nil {
			t.Fatal(err)
		}
		return st
	}
	for _, tt := range []struct {
		bucket string
		status int
		says   string
	}{
		{srv.Bucket, http.StatusOK, "ready"}, // no acl.json: reachable, only not initialised
		{"no-such-bucket", http.StatusServiceUnavailable, "bucket does not exist"},
	} {
		cfg := f.config(t)
		cfg.Store = open(tt.bucket)
		_, base := startServer(t, cfg)
		resp, body := do(t, nil, "GET", base+"/readyz", nil)
		if resp.StatusCode != tt.status || !strings.Contains(string(body), tt.says) {
			t.Errorf("bucket %s: /readyz answered %d %s, want %d and %q", tt.bucket, resp.StatusCode, body, tt.status, tt.says)
		}
	}
}

// TestMetricsRateLimitedHelp: the help of rate_limited_total names every
// limit its label takes.
func TestMetricsRateLimitedHelp(t *testing.T) {
	f := newFixture(t)
	_, base := startServer(t, f.config(t))
	_, body := do(t, nil, "GET", base+"/metrics", nil)
	var help string
	for _, l := range strings.Split(string(body), "\n") {
		if h, ok := strings.CutPrefix(l, "# HELP deploy_tracker_rate_limited_total "); ok {
			help = h
		}
	}
	for _, limit := range []string{limitDevice, limitAddress, limitToken} {
		if !strings.Contains(help, limit) {
			t.Errorf("rate_limited_total's help %q does not name limit %q", help, limit)
		}
	}
}
