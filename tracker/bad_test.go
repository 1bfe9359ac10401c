package tracker

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

// TestBadInput checks that bad requests get the right 4xx with a JSON
// message, and never a 5xx (the plugin retries those forever); the Capgo
// update endpoint answers 200 with error, message and kind instead.
func TestBadInput(t *testing.T) {
	f := newFixture(t)
	ref := f.publish("retailer", "production", "1.0.0")
	cfg := f.config(t)
	cfg.StatsToken = "tok"
	cfg.Limits.MaxBody = 64 << 10
	cfg.Limits.MaxEvents = 50
	_, base := startServer(t, cfg)

	dev := "&device=" + deviceA
	longDevice := strings.Repeat("a", 129)
	event := `{"device_id":"` + deviceA + `","action":"set","version_name":"1.0.0","timestamp":1700000000000}`
	many := "[" + strings.TrimSuffix(strings.Repeat(event+",", 51), ",") + "]"
	cases := []struct {
		name, method, path, body string
		hdr                      []string
		want                     int
	}{
		{"latest without params", "GET", "/build/latest", "", nil, 400},
		{"latest without device", "GET", "/build/latest?app=retailer", "", nil, 400},
		{"latest without app", "GET", "/build/latest?device=" + deviceA, "", nil, 400},
		{"latest bad app", "GET", "/build/latest?app=Retail%21" + dev, "", nil, 400},
		{"latest app twice", "GET", "/build/latest?app=retailer&app=shop" + dev, "", nil, 400},
		{"latest unknown app", "GET", "/build/latest?app=nope" + dev, "", nil, 404},
		{"latest bad channel", "GET", "/build/latest?app=retailer&channel=../x" + dev, "", nil, 400},
		{"latest unknown channel", "GET", "/build/latest?app=retailer&channel=beta" + dev, "", nil, 404},
		{"latest huge device", "GET", "/build/latest?app=retailer&device=" + longDevice, "", nil, 400},
		{"latest device with spaces", "GET", "/build/latest?app=retailer&device=a%20b", "", nil, 400},
		{"latest device with NUL", "GET", "/build/latest?app=retailer&device=a%00b", "", nil, 400},
		{"download without id", "GET", "/build/download?device=" + deviceA, "", nil, 400},
		{"download path trick", "GET", "/build/download?id=../../etc/passwd" + dev, "", nil, 400},
		{"download encoded path trick", "GET", "/build/download?id=retailer-1%2F..%2F..%2Facl.json" + dev, "", nil, 400},
		{"download key as id", "GET", "/build/download?id=apps/retailer/bundles/" + ref.SHA256 + ".zip" + dev, "", nil, 400},
		{"download id 0", "GET", "/build/download?id=retailer-0" + dev, "", nil, 400},
		{"download id leading zero", "GET", "/build/download?id=retailer-01" + dev, "", nil, 400},
		{"download id overflow", "GET", "/build/download?id=retailer-99999999999999999999" + dev, "", nil, 400},
		{"download unknown id", "GET", "/build/download?id=retailer-999" + dev, "", nil, 404},
		{"download unknown app", "GET", "/build/download?id=shop-1" + dev, "", nil, 404},
		{"download without device", "GET", "/build/download?id=" + ref.ID, "", nil, 400},
		{"complete unknown id", "GET", "/build/download/complete?id=retailer-7" + dev, "", nil, 404},
		{"complete bad id", "GET", "/build/download/complete?id=%00" + dev, "", nil, 400},
		{"latest by POST", "POST", "/build/latest?app=retailer" + dev, "{}", nil, 405},
		{"download by DELETE", "DELETE", "/build/download?id=" + ref.ID + dev, "", nil, 405},
		{"updates by GET", "GET", "/capgo/retailer/updates", "", nil, 405},
		{"stats by PUT", "PUT", "/capgo/retailer/stats", "[]", nil, 405},
		{"unknown path", "GET", "/etc/passwd", "", nil, 404},
		{"dot-dot path", "GET", "/build/../build/latest?app=retailer" + dev, "", nil, 400},
		{"double slash POST", "POST", "//capgo/retailer/updates", "{}", nil, 400},
		{"updates malformed JSON", "POST", "/capgo/retailer/updates", `{"device_id":`, nil, 200},                                 // kind "failed" (capgoFailed)
		{"updates empty body", "POST", "/capgo/retailer/updates", "", nil, 200},                                                  // kind "failed" (capgoFailed)
		{"updates array body", "POST", "/capgo/retailer/updates", "[]", nil, 200},                                                // kind "failed" (capgoFailed)
		{"updates without device", "POST", "/capgo/retailer/updates", `{"version_name":"1"}`, nil, 200},                          // kind "failed" (capgoFailed)
		{"updates object device", "POST", "/capgo/retailer/updates", `{"device_id":{"a":1}}`, nil, 200},                          // kind "failed" (capgoFailed)
		{"updates oversized body", "POST", "/capgo/retailer/updates", `{"pad":"` + strings.Repeat("x", 70<<10) + `"}`, nil, 200}, // kind "failed" (capgoFailed)
		{"stats oversized body", "POST", "/capgo/retailer/stats", "[" + strings.Repeat(" ", 70<<10) + "]", nil, 413},
		{"stats too many events", "POST", "/capgo/retailer/stats", many, nil, 413},
		{"stats not JSON", "POST", "/capgo/retailer/stats", "hello", nil, 400},
		{"latest native with control character", "GET", "/build/latest?app=retailer&native=1%00" + dev, "", nil, 400},
		{"latest native twice", "GET", "/build/latest?app=retailer&native=1&native=2" + dev, "", nil, 400},
		{"channel by PATCH", "PATCH", "/capgo/retailer/channel", "{}", nil, 405},
		{"setChannel not JSON", "POST", "/capgo/retailer/channel", "hello", nil, 400},
		{"setChannel without device", "POST", "/capgo/retailer/channel", `{"channel":"beta"}`, nil, 400},
		{"getChannel bad app", "PUT", "/capgo/Retail!/channel", `{"device_id":"` + deviceA + `"}`, nil, 400},
		{"listChannels bad app", "GET", "/capgo/Retail!/channel", "", nil, 400},
		{"stats array of numbers", "POST", "/capgo/retailer/stats", "[1,2]", nil, 400},
		{"stats string", "POST", "/capgo/retailer/stats", `"x"`, nil, 400},
		{"stats without action", "POST", "/capgo/retailer/stats", `{"device_id":"` + deviceA + `"}`, nil, 400},
		{"stats bad action", "POST", "/capgo/retailer/stats", `[{"device_id":"` + deviceA + `","action":"DROP TABLE"}]`, nil, 400},
		{"stats bad timestamp", "POST", "/capgo/retailer/stats", `{"device_id":"` + deviceA + `","action":"set","timestamp":-5}`, nil, 400},
		{"stats huge timestamp", "POST", "/capgo/retailer/stats", `{"device_id":"` + deviceA + `","action":"set","timestamp":1e300}`, nil, 400},
		{"stats huge device", "POST", "/capgo/retailer/stats", `{"device_id":"` + longDevice + `","action":"set"}`, nil, 400},
		{"stats endpoint without token", "GET", "/api/stats?app=retailer", "", nil, 401},
		{"stats endpoint wrong token", "GET", "/api/stats?app=retailer", "", []string{"Authorization", "Bearer nope"}, 401},
		{"stats endpoint bad app", "GET", "/api/stats?app=%2E%2E", "", []string{"Authorization", "Bearer tok"}, 400},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var body []byte
			if c.body != "" || c.method == "POST" {
				body = []byte(c.body)
			}
			resp, got := do(t, nil, c.method, base+c.path, body, c.hdr...)
			if resp.StatusCode != c.want {
				t.Fatalf("%s %s: %s %s, want %d", c.method, c.path, resp.Status, abbrev(string(got)), c.want)
			}
			e := decode[ErrorResponse](t, got)
			if e.Error == "" || e.Message == "" {
				t.Errorf("error answer without error and message: %s", got)
			}
			if c.want == 405 && resp.Header.Get("Allow") == "" {
				t.Error("405 without Allow")
			}
		})
	}

	// Partly valid batches keep their valid events.
	resp, got := do(t, nil, "POST", base+"/capgo/retailer/stats", []byte(`[`+event+`,{"device_id":"x y","action":"set"}]`))
	if resp.StatusCode != 200 || !bytes.Contains(got, []byte(`"ignored":1`)) {
		t.Errorf("partly valid batch: %s %s", resp.Status, got)
	}
}

func TestStatsDisabledWithoutToken(t *testing.T) {
	f := newFixture(t)
	_, base := startServer(t, f.config(t))
	resp, body := do(t, nil, "GET", base+"/api/stats", nil, "Authorization", "Bearer x")
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(string(body), "stats token") {
		t.Errorf("%s %s", resp.Status, body)
	}
}

func TestRateLimits(t *testing.T) {
	f := newFixture(t)
	f.publish("retailer", "production", "1")
	cfg := f.config(t)
	cfg.Limits = Limits{DeviceRate: 1, DeviceBurst: 3, AddrRate: -1}
	_, base := startServer(t, cfg)
	url := base + "/build/latest?app=retailer&device=" + deviceA
	for i := range 3 {
		if resp, body := do(t, nil, "GET", url, nil); resp.StatusCode != 200 {
			t.Fatalf("request %d: %s %s", i, resp.Status, body)
		}
	}
	resp, _ := do(t, nil, "GET", url, nil)
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") != "1" {
		t.Fatalf("4th request: %s Retry-After %q", resp.Status, resp.Header.Get("Retry-After"))
	}
	if resp, _ := do(t, nil, "GET", base+"/build/latest?app=retailer&device="+deviceB, nil); resp.StatusCode != 200 {
		t.Errorf("another device: %s", resp.Status)
	}

	cfg = f.config(t)
	cfg.Limits = Limits{DeviceRate: -1, AddrRate: 1, AddrBurst: 2}
	_, base = startServer(t, cfg)
	codes := []int{}
	for _, d := range []string{deviceA, deviceB, "third"} {
		resp, _ := do(t, nil, "GET", base+"/build/latest?app=retailer&device="+d, nil)
		codes = append(codes, resp.StatusCode)
	}
	if codes[0] != 200 || codes[1] != 200 || codes[2] != 429 {
		t.Errorf("per-address limit: %v", codes)
	}
	if resp, _ := do(t, nil, "GET", base+"/healthz", nil); resp.StatusCode != 200 {
		t.Errorf("healthz is not rate limited: %s", resp.Status)
	}
}

// TestStatsEventsSpendTheAddressBudget sends batches of stats events with
// a new device id each, from one address: each event spends the
// address's budget, not only each request.
func TestStatsEventsSpendTheAddressBudget(t *testing.T) {
	f := newFixture(t)
	f.publish("retailer", "production", "1")
	cfg := f.config(t)
	cfg.Limits = Limits{DeviceRate: -1, AddrRate: 1, AddrBurst: 100}
	_, base := startServer(t, cfg)
	batch := func(n, from int) []byte {
		evs := make([]map[string]string, n)
		for i := range evs {
			evs[i] = map[string]string{"action": "set", "app_id": "retailer", "device_id": fmt.Sprintf("00000000-0000-4000-8000-%012d", from+i), "version_name": "1"}
		}
		return mustJSON(t, evs)
	}
	if resp, body := do(t, nil, "POST", base+"/capgo/retailer/stats", batch(60, 0)); resp.StatusCode != 200 {
		t.Fatalf("60 events within a budget of 100: %s %s", resp.Status, body)
	}
	resp, body := do(t, nil, "POST", base+"/capgo/retailer/stats", batch(60, 60))
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("60 more events with 40 left of the budget: %s %s, want 429 with Retry-After", resp.Status, body)
	}
	if resp, body := do(t, nil, "POST", base+"/capgo/retailer/stats", batch(30, 120)); resp.StatusCode != 200 {
		t.Errorf("30 events with 40 left: %s %s", resp.Status, body)
	}
}

// TestBatchOverTheBurstIsCharged sends a batch of more events than the
// address's burst: it passes once, and its cost holds back what follows
// until it is paid off.
func TestBatchOverTheBurstIsCharged(t *testing.T) {
	l := newLimiter(10, 20, 1000)
	now := time.Unix(1700000000, 0)
	if ok, _ := l.allow("a", now); !ok {
		t.Fatal("the request itself is refused")
	}
	if ok, _ := l.allowN("a", now, 59); !ok {
		t.Fatal("a batch of 60 events on a full bucket of 20 is refused, and would be forever")
	}
	// 20 - 60 = -40 tokens: 4 s to get back to 0, a 5th for the next request.
	if ok, wait := l.allow("a", now.Add(4*time.Second)); ok || wait != 100*time.Millisecond {
		t.Errorf("a request 4 s after: allowed %v, wait %v; want refused, 100ms", ok, wait)
	}
	if ok, _ := l.allow("a", now.Add(4100*time.Millisecond)); !ok {
		t.Error("a request once the debt is paid is refused")
	}
}

func TestLimiterIsBounded(t *testing.T) {
	l := newLimiter(1, 1, 16*64)
	now := time.Unix(1700000000, 0)
	for i := range 100000 {
		l.allow(strings.Repeat("k", i%7)+string(rune('a'+i%26))+strconv.Itoa(i), now)
	}
	n := 0
	for i := range l.shards {
		n += len(l.shards[i].buckets)
	}
	if n > 16*64 {
		t.Errorf("limiter holds %d keys, bound is %d", n, 16*64)
	}
}

// TestAppendJSONString checks the download URL's JSON encoding against
// encoding/json, byte for byte where encoding/json's output is unique.
func TestAppendJSONString(t *testing.T) {
	for _, s := range []string{"", "http://h:8080/build/download?id=retailer-1&device=0f8f%2B", `a"b\c`, "<script>&</script>", "é ü 日本", "\u2028\u2029", "tab\there\x01", "bad\xffutf8"} {
		want, _ := json.Marshal(s)
		got := appendJSONString(nil, s)
		var back string
		if err := json.Unmarshal(got, &back); err != nil {
			t.Fatalf("%q: %s is not JSON: %v", s, got, err)
		}
		if back != strings.ToValidUTF8(s, "\ufffd") {
			t.Errorf("%q: decodes to %q", s, back)
		}
		if !strings.ContainsAny(s, "\t\x01") && string(got) != string(want) {
			t.Errorf("%q: %s, encoding/json writes %s", s, got, want)
		}
	}
}

// TestAccessLogHidesSecrets sends a token in a URL: the access log keeps
// the other parameters and never the token.
func TestAccessLogHidesSecrets(t *testing.T) {
	f := newFixture(t)
	f.publish("retailer", "production", "1")
	logs := &logBuffer{}
	cfg := f.config(t)
	cfg.Log = zerolog.New(logs)
	_, base := startServer(t, cfg)
	do(t, nil, "GET", base+"/dashboard/signin?token=hunter2-secret&Password=p%40ss&app=retailer", nil)
	do(t, nil, "GET", base+"/build/latest?app=retailer&device="+deviceA+"&stats_token=tok-secret", nil)
	got := logs.String()
	for _, secret := range []string{"hunter2", "p%40ss", "tok-secret"} {
		if strings.Contains(got, secret) {
			t.Errorf("the access log holds %q:\n%s", secret, got)
		}
	}
	if !strings.Contains(got, `token=REDACTED&Password=REDACTED&app=retailer`) {
		t.Errorf("the access log lost the other parameters:\n%s", got)
	}
}

// TestAccessLogHidesDevices: device ids are personal data; the access log
// shows a tag that is the same for one device's requests and tells
// nothing of its id.
func TestAccessLogHidesDevices(t *testing.T) {
	f := newFixture(t)
	ref := f.publish("retailer", "production", "1")
	logs := &logBuffer{}
	cfg := f.config(t)
	cfg.Log = zerolog.New(logs)
	_, base := startServer(t, cfg)
	tags := map[string]string{}
	for _, dev := range []string{deviceA, deviceB, deviceA} {
		for _, q := range []string{"app=retailer&device=" + dev, "id=" + ref.ID + "&Device=" + dev, "app=retailer&device_id=" + url.QueryEscape(dev)} {
			path := "/build/latest?"
			if strings.HasPrefix(q, "id=") {
				path = "/build/download/complete?"
			}
			do(t, nil, "GET", base+path+q, nil)
			var line map[string]any
			for _, l := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
				if m := decode[map[string]any](t, []byte(l)); m["message"] == "request" {
					line = m
				}
			}
			query, _ := line["query"].(string)
			if strings.Contains(logs.String(), dev) || strings.Contains(logs.String(), dev[:8]) {
				t.Fatalf("the access log holds device id %s:\n%s", dev, logs)
			}
			vals, err := url.ParseQuery(query)
			if err != nil || len(vals) != 2 {
				t.Fatalf("logged query %q: %v", query, err)
			}
			for name, v := range vals {
				if strings.EqualFold(name, "device") || name == "device_id" {
					if prev, ok := tags[dev]; ok && prev != v[0] || !strings.HasPrefix(v[0], "h-") || len(v[0]) != 10 {
						t.Fatalf("device %s logged as %q, before as %q; want h- and 8 hex digits, the same each time", dev, v[0], prev)
					}
					tags[dev] = v[0]
				}
			}
		}
	}
	if len(tags) != 2 || tags[deviceA] == tags[deviceB] {
		t.Fatalf("tags %v: want one per device", tags)
	}
}

// TestAccessLogDuration: a request line names the unit of its duration.
func TestAccessLogDuration(t *testing.T) {
	f := newFixture(t)
	f.publish("retailer", "production", "1")
	logs := &logBuffer{}
	cfg := f.config(t)
	cfg.Log = zerolog.New(logs)
	_, base := startServer(t, cfg)
	do(t, nil, "GET", base+"/build/latest?app=retailer&device="+deviceA, nil)
	var line map[string]any
	for _, l := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		if m := decode[map[string]any](t, []byte(l)); m["message"] == "request" {
			line = m
		}
	}
	if ms, ok := line["duration_ms"].(float64); !ok || ms <= 0 || ms > 10_000 || line["duration"] != nil {
		t.Fatalf("request line %v: want duration_ms, the milliseconds taken, and no unitless duration", line)
	}
}
