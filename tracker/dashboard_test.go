package tracker

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/cartona/deploy/dashboard"
	"github.com/cartona/deploy/internal/browsertest"
	"github.com/cartona/deploy/manifest"
	"github.com/cartona/deploy/publish"
	"github.com/cartona/deploy/state"
	"github.com/cartona/deploy/store"
	"github.com/cartona/deploy/store/file"
)

// clock is a settable time for the tracker, so events land in chosen hours.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Set(t time.Time) { c.mu.Lock(); c.t = t; c.mu.Unlock() }

// dashboardSeed is a store filled by real uploads (publish.Publisher): app
// shop with production 1.0.0 and beta 1.1.0, app kiosk with production.
type dashboardSeed struct {
	store     *file.Store
	dir       string // the store's folder
	trust     manifest.Trust
	published time.Time // when the uploads signed their pointers
	pub       *publish.Publisher
	at        *time.Time // the publisher's clock
	halter    ed25519.PrivateKey
}

const (
	dashToken  = "dashboard-test-token-7f3a"
	dashSigner = "release-bot"
	dashHalter = "tracker-eu" // holds the halt key: can_halt only
)

func seedDashboard(t *testing.T) *dashboardSeed {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "store")
	st, err := file.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	root, user, halter := newKey(t), newKey(t), newKey(t)
	trust := manifest.Trust{Roots: []ed25519.PublicKey{manifest.Public(root)}}
	users := []manifest.User{{Name: dashSigner, Keys: []string{manifest.FormatPublicKey(manifest.Public(user))},
		Grants: map[string]manifest.Grant{manifest.AllApps: {CanUpload: true}}},
		{Name: dashHalter, Keys: []string{manifest.FormatPublicKey(manifest.Public(halter))},
			Grants: map[string]manifest.Grant{manifest.AllApps: {CanHalt: true}}}}
	if _, err := publish.InitACL(ctx, st, root, users); err != nil {
		t.Fatal(err)
	}
	published := time.Now().UTC().Truncate(time.Second).Add(-5 * time.Hour)
	at := published
	seed := &dashboardSeed{store: st, dir: dir, trust: trust, published: published, at: &at, halter: halter}
	seed.pub = &publish.Publisher{Store: st, Key: user, Trust: trust, Now: func() time.Time { return *seed.at }}
	for _, r := range []publish.Request{
		{App: "shop", Channel: "production", Version: "1.0.0", Notes: "first release"},
		{App: "shop", Channel: "beta", Version: "1.1.0", Notes: "new checkout"},
		{App: "kiosk", Channel: "production", Version: "0.1.0", MinNative: "2.0", MaxNative: "2.9"},
	} {
		seed.upload(t, r)
	}
	return seed
}

// upload publishes a small web build as the request says.
func (s *dashboardSeed) upload(t *testing.T, r publish.Request) {
	r.Dir = t.TempDir()
	writeFile(t, filepath.Join(r.Dir, "index.html"), "<!doctype html><title>"+r.Version+"</title>")
	writeFile(t, filepath.Join(r.Dir, "main.js"), "CapacitorUpdater.notifyAppReady(); // "+r.Version)
	if _, err := s.pub.Upload(context.Background(), r); err != nil {
		t.Fatal(err)
	}
}

// release runs a release command on a shop channel at time at, with notes.
func (s *dashboardSeed) release(t *testing.T, at time.Time, channel, notes string, edit publish.Edit) {
	*s.at = at
	if _, err := s.pub.Change(context.Background(), "shop", channel, publish.Noted(notes, time.Time{}, edit), false); err != nil {
		t.Fatalf("%s on %s: %v", notes, channel, err)
	}
}

// halt signs, with the seed's halt key, a halt of the candidate of a shop
// channel's pointer at time at, as a tracker does (docs/format.md, "Halt"),
// and stores it as the channel's next history entry and latest.json.
func (s *dashboardSeed) halt(t *testing.T, channel string, at time.Time, reason string) {
	ctx := context.Background()
	key := manifest.LatestKey("shop", channel)
	data, _, err := store.ReadSmall(ctx, s.store, key, manifest.MaxLatestSize)
	if err != nil {
		t.Fatal(err)
	}
	env, err := manifest.ParseEnvelope(data, manifest.TypeLatest, manifest.MaxLatestSize)
	if err != nil {
		t.Fatal(err)
	}
	l := decode[manifest.Latest](t, env.Payload)
	h := manifest.Halt{App: "shop", Channel: channel, Sequence: l.Sequence + 1, Issued: at, Reason: reason,
		Pointer: *env, Previous: manifest.LinkTo(l.Sequence, data)}
	signed, err := manifest.Sign(manifest.TypeHalt, h, s.halter)
	if err != nil {
		t.Fatal(err)
	}
	out := signed.Marshal()
	for _, k := range []string{manifest.HistoryKey("shop", channel, h.Sequence), key} {
		if _, err := s.store.Put(ctx, k, bytes.NewReader(out), store.PutOptions{}); err != nil {
			t.Fatal(err)
		}
	}
}

// buildRef is shop's build n as its verified record names it.
func (s *dashboardSeed) buildRef(t *testing.T, n int64) manifest.BuildRef {
	b, err := s.pub.ReadBuild(context.Background(), "shop", n)
	if err != nil {
		t.Fatal(err)
	}
	return b.BuildRef
}

// releaseHistory moves shop's channels as a release manager would: beta
// gets 1.2.0, production is promoted to 1.1.0, rolls 1.2.0 out to 10 % and
// rolls it back; beta gets 1.2.1, which production rolls out to 10 %. It
// returns when each change was signed, in that order.
func (s *dashboardSeed) releaseHistory(t *testing.T) []time.Time {
	at := make([]time.Time, 6)
	for i := range at {
		at[i] = s.published.Add(time.Duration(i+1) * time.Hour)
	}
	*s.at = at[0]
	s.upload(t, publish.Request{App: "shop", Channel: "beta", Version: "1.2.0", Notes: "faster search"})
	s.release(t, at[1], "production", "checkout for everyone", publish.Promote(s.buildRef(t, 2)))
	s.release(t, at[2], "production", "search to a tenth", publish.Rollout(s.buildRef(t, 3), 10))
	s.release(t, at[3], "production", "search crashes on old phones", publish.Rollback(nil))
	*s.at = at[4]
	s.upload(t, publish.Request{App: "shop", Channel: "beta", Version: "1.2.1", Notes: "search fixed on old phones"})
	s.release(t, at[5], "production", "fixed search to a tenth", publish.Rollout(s.buildRef(t, 4), 10))
	return at
}

// tamper changes one byte of a stored history entry's payload.
func (s *dashboardSeed) tamper(t *testing.T, channel string, seq int64) {
	path := filepath.Join(s.dir, filepath.FromSlash(manifest.HistoryKey("shop", channel, seq)))
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	p := strings.Index(string(data), `"payload"`)
	i := p + strings.Index(string(data[p+len(`"payload"`):]), `"`) + len(`"payload"`) + 40
	data[i] = map[bool]byte{true: 'B', false: 'A'}[data[i] == 'A']
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

func writeFile(t *testing.T, path, body string) {
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
}

// startDashboardTracker serves the seed with the stats token and the clock
// on a loopback port, and returns its base URL at localhost: browsers keep
// a Secure cookie over plain HTTP only there.
func startDashboardTracker(t *testing.T, seed *dashboardSeed, clk *clock) string {
	st := openStateWith(t, filepath.Join(t.TempDir(), "state.db"), state.Options{Log: zerolog.New(io.Discard), Now: clk.Now})
	cfg := Config{Store: seed.store, Trust: seed.trust, State: st,
		StatsToken: dashToken, CacheTTL: 10 * time.Millisecond, Log: zerolog.New(io.Discard),
		Limits: Limits{DeviceRate: -1, AddrRate: -1}, Now: clk.Now}
	_, base := startServer(t, cfg)
	_, port, _ := net.SplitHostPort(strings.TrimPrefix(base, "http://"))
	return "http://localhost:" + port
}

// install plays the seed's client installing channel's build on device.
func install(t *testing.T, base, device, channel string) {
	resp, body := do(t, nil, "GET", base+"/build/latest?app=shop&device="+device+"&channel="+channel, nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("latest: %s %s", resp.Status, body)
	}
	id := decode[struct{ Build struct{ ID string } }](t, body).Build.ID
	if resp, body := do(t, nil, "GET", base+"/build/download/complete?id="+id+"&device="+device, nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("complete: %s %s", resp.Status, body)
	}
}

// TestDashboardInBrowser signs in to a real tracker's dashboard in headless
// Chromium and checks what it shows against the uploads and events that
// seeded it: channels, the hourly and daily adoption chart, builds, history,
// a refused wrong token, keyboard use, a phone-sized screen, accessibility
// (axe-core), and no console errors or CSP violations.
func TestDashboardInBrowser(t *testing.T) {
	seed := seedDashboard(t)
	start := time.Now().UTC().Truncate(time.Hour).Add(-3*time.Hour + 10*time.Minute)
	clk := &clock{t: start}
	base := startDashboardTracker(t, seed, clk)
	// Installs in three hours: production by d1, d2, then d3, then d5;
	// beta by d4, which then rolls it back.
	for hour, devices := range [][]string{{"d1", "d2"}, {"d3", "d4"}, {"d5"}} {
		clk.Set(start.Add(time.Duration(hour) * time.Hour))
		for _, d := range devices {
			channel := map[bool]string{true: "beta", false: "production"}[d == "d4"]
			install(t, base, "device-"+d, channel)
		}
	}
	rollback := []map[string]any{{"action": "update_fail", "app_id": "shop", "device_id": "device-d4", "version_name": "1.1.0",
		"old_version_name": "1.0.0", "timestamp": clk.Now().UnixMilli(), "platform": "android", "plugin_version": "7.0.0"}}
	if resp, body := do(t, nil, "POST", base+"/capgo/shop/stats", mustJSON(t, rollback)); resp.StatusCode != http.StatusOK {
		t.Fatalf("stats: %s %s", resp.Status, body)
	}
	// Releases after the installs, and a history entry changed in the store.
	at := seed.releaseHistory(t)
	seed.tamper(t, "beta", 1)
	now := start.Add(3 * time.Hour)
	clk.Set(now)

	day := func(t time.Time) int64 { return t.Unix() / 86400 }
	expires := func(issued time.Time) time.Time { return issued.Add(publish.DefaultExpiry) }
	entry := func(seq int, change, version, notes string, issued time.Time) map[string]any {
		return map[string]any{"sequence": seq, "change": change, "by": dashSigner, "version": version, "notes": notes, "issued": issued, "verified": true}
	}
	expect := map[string]any{
		"timezone": "Asia/Kolkata", // UTC+5:30: hour buckets start at :30 there
		"app":      "shop",
		"apps":     []string{"kiosk", "shop"},
		"channels": []map[string]any{
			{"name": "beta", "version": "1.2.1", "build_id": "shop-4", "expires": expires(at[4]), "sequence": 3},
			{"name": "production", "version": "1.1.0", "build_id": "shop-2", "expires": expires(at[5]), "sequence": 5,
				"rollout": map[string]any{"id": "b4-s5", "version": "1.2.1", "build_id": "shop-4", "percent": 10, "state": "running"}},
		},
		"adoption": map[string]any{
			"hour": map[string]any{"points": 4, "first": start.Truncate(time.Hour), "series": []map[string]any{
				{"version": "1.0.0", "build_id": "shop-1", "last": 4},
				{"version": "1.1.0", "build_id": "shop-2", "last": 1},
			}},
			"day": map[string]any{"points": day(now) - day(start) + 1},
		},
		"builds": 2,
		"history": map[string]any{
			"beta": []map[string]any{
				entry(3, "newer build", "1.2.1", "search fixed on old phones", at[4]),
				entry(2, "", "1.2.0", "faster search", at[0]), // the entry before does not verify
				{"sequence": 1, "verified": false},
			},
			"production": []map[string]any{
				withRollout(entry(5, "rollout", "1.1.0", "fixed search to a tenth", at[5]), "1.2.1", 10, "running"),
				withDropped(entry(4, "rollback", "1.1.0", "search crashes on old phones", at[3]), "1.2.0 (shop-3)"),
				withRollout(entry(3, "rollout", "1.1.0", "search to a tenth", at[2]), "1.2.0", 10, "running"),
				entry(2, "newer build", "1.1.0", "checkout for everyone", at[1]),
				entry(1, "first release", "1.0.0", "first release", seed.published),
			},
		},
	}
	artifacts := browsertest.Run(t, "tracker", base, dashToken, expect)
	if dst := os.Getenv("DASHBOARD_SCREENSHOT"); dst != "" {
		data, err := os.ReadFile(filepath.Join(artifacts, "dashboard.png"))
		if err == nil {
			err = os.WriteFile(dst, data, 0o644)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
}

// withRollout adds the candidate an entry of the history shows.
func withRollout(e map[string]any, version string, percent int, state string) map[string]any {
	e["rollout"] = map[string]any{"version": version, "percent": percent, "state": state}
	return e
}

// withDropped is e, a rollback that took away the candidate dropped.
func withDropped(e map[string]any, dropped string) map[string]any {
	e["dropped"] = dropped
	return e
}

// TestDashboardAPI checks the API's answers and its token with plain HTTP.
func TestDashboardAPI(t *testing.T) {
	seed := seedDashboard(t)
	clk := &clock{t: time.Now().UTC()}
	base := startDashboardTracker(t, seed, clk)
	install(t, base, "device-a", "production")
	bearer := []string{"Authorization", "Bearer " + dashToken}
	for _, tc := range []struct {
		path   string
		hdr    []string
		status int
		want   string
	}{
		{"/api/apps", nil, 401, `"unauthorized"`},
		{"/api/apps", []string{"Authorization", "Bearer wrong"}, 401, `"unauthorized"`},
		{"/api/apps", []string{"Cookie", "__Host-deploy_session=v1.9999999999.forged"}, 401, `"unauthorized"`},
		{"/api/apps", bearer, 200, `{"apps":["kiosk","shop"]}`},
		{"/api/stats?app=shop", bearer, 200, `"downloads_completed":1`},
		{"/api/apps/shop", bearer, 200, `"installs":1`},
		{"/api/apps/shop", bearer, 200, `"name":"production","build":{"id":"shop-1"`},
		{"/api/apps/kiosk", bearer, 200, `"min_native":"2.0","max_native":"2.9"`},
		{"/api/apps/nope", bearer, 404, `app \"nope\" has no published channel`},
		{"/api/apps/Shop", bearer, 400, `"invalid_request"`},
		{"/api/apps/shop/adoption?bucket=week", bearer, 400, `bucket is hour or day`},
		{"/api/apps/shop/adoption?bucket=day&points=1", bearer, 200, `"series":[{"build_id":"shop-1","number":1,"version":"1.0.0","devices":[1]}]`},
		{"/api/apps/shop/channels/beta/history", bearer, 200, `"by":"release-bot"`},
		{"/api/apps/shop/channels/gamma/history", bearer, 404, `"not_found"`},
		{"/dashboard", nil, 200, `<label for="token">Stats token</label>`},
	} {
		resp, body := do(t, nil, "GET", base+tc.path, nil, tc.hdr...)
		if resp.StatusCode != tc.status || !strings.Contains(string(body), tc.want) {
			t.Errorf("GET %s %v: %s %s; want %d with %s", tc.path, tc.hdr, resp.Status, body, tc.status, tc.want)
		}
	}
	// The sign-in form: a wrong token gets 401 and no cookie; the right one
	// a session cookie that is not the token and opens the API.
	form := func(tok string) (*http.Response, []byte) {
		return do(t, noRedirects, "POST", base+"/dashboard/signin", []byte("token="+tok), "Content-Type", "application/x-www-form-urlencoded")
	}
	if resp, _ := form("wrong"); resp.StatusCode != 401 || len(resp.Cookies()) != 0 {
		t.Errorf("wrong token: %s, cookies %v", resp.Status, resp.Cookies())
	}
	resp, _ := form(dashToken)
	cookies := resp.Cookies()
	if resp.StatusCode != http.StatusSeeOther || len(cookies) != 1 || strings.Contains(cookies[0].Value, dashToken) {
		t.Fatalf("sign-in: %s, cookies %v", resp.Status, cookies)
	}
	if c := cookies[0]; !c.Secure || !c.HttpOnly || c.SameSite != http.SameSiteStrictMode {
		t.Errorf("cookie %s lacks Secure, HttpOnly or SameSite=Strict", resp.Header.Get("Set-Cookie"))
	}
	session := []string{"Cookie", cookies[0].Name + "=" + cookies[0].Value}
	if resp, body := do(t, nil, "GET", base+"/api/apps", nil, session...); resp.StatusCode != 200 {
		t.Errorf("API with the session cookie: %s %s", resp.Status, body)
	}
	page, _ := do(t, nil, "GET", base+"/dashboard", nil, session...)
	if csp := page.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'self'") || strings.Contains(csp, "unsafe") {
		t.Errorf("dashboard CSP %q", csp)
	}
	// Another site cannot post the form.
	resp, _ = do(t, noRedirects, "POST", base+"/dashboard/signin", []byte("token="+dashToken),
		"Content-Type", "application/x-www-form-urlencoded", "Origin", "https://evil.example")
	if resp.StatusCode != http.StatusForbidden || len(resp.Cookies()) != 0 {
		t.Errorf("cross-site sign-in: %s", resp.Status)
	}
}

// TestDashboardHistoryBounded checks that the history API shows the newest
// entries only, each with the change it made, and follows new releases.
func TestDashboardHistoryBounded(t *testing.T) {
	seed := seedDashboard(t)
	clk := &clock{t: time.Now().UTC()}
	base := startDashboardTracker(t, seed, clk)
	at := seed.published
	seed.release(t, at, "production", "a tenth", publish.Rollout(seed.buildRef(t, 2), 10)) // sequence 2
	for seq := int64(3); seq <= historyShown+3; seq++ {
		at = at.Add(time.Minute)
		seed.release(t, at, "production", "hold", publish.Pause(seq%2 == 1))
	}
	history := func() []map[string]any {
		resp, body := do(t, nil, "GET", base+"/api/apps/shop/channels/production/history", nil, "Authorization", "Bearer "+dashToken)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("history: %s %s", resp.Status, body)
		}
		return decode[struct{ Entries []map[string]any }](t, body).Entries
	}
	got := history()
	if len(got) != historyShown {
		t.Fatalf("%d entries, want the newest %d", len(got), historyShown)
	}
	for i, e := range got {
		seq := historyShown + 3 - i
		want := map[bool]string{true: "pause", false: "resume"}[seq%2 == 1]
		if e["sequence"] != float64(seq) || e["change"] != want || e["verified"] != true || e["rollout"] == nil {
			t.Fatalf("entry %d: %v; want sequence %d, change %s, verified, with its rollout", i, e, seq, want)
		}
	}
	// A new release shows once the cache expires.
	seed.release(t, at.Add(time.Minute), "production", "everyone", publish.SetPercent(100))
	clk.Set(clk.Now().Add(time.Second))
	if e := history()[0]; e["sequence"] != float64(historyShown+4) || e["change"] != "newer build" || e["rollout"] != nil {
		t.Errorf("newest entry after the rollout reached everyone: %v", e)
	}
}

// TestStatsTokenGuesses checks that /api/stats counts wrong tokens by the
// client address (X-Forwarded-For behind a trusted proxy) and that a
// short token is warned about at start.
func TestStatsTokenGuesses(t *testing.T) {
	f := newFixture(t)
	f.writeACL()
	logs := &logBuffer{}
	cfg := f.config(t)
	cfg.StatsToken, cfg.TrustProxy, cfg.Log = "tok", true, zerolog.New(logs)
	_, base := startServer(t, cfg)
	if !strings.Contains(logs.String(), "stats token is short") {
		t.Errorf("no warning about a 3-character stats token in the log:\n%s", logs.String())
	}
	stats := func(addr, token string) *http.Response {
		resp, _ := do(t, http.DefaultClient, "GET", base+StatsPath, nil, "Authorization", "Bearer "+token, "X-Forwarded-For", addr)
		return resp
	}
	for i := range 10 {
		if resp := stats("198.51.100.7", fmt.Sprint("guess", i)); resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("wrong token %d: %s, want 401", i+1, resp.Status)
		}
	}
	if resp := stats("198.51.100.7", "tok"); resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" {
		t.Errorf("the right token after 10 wrong ones from one address: %s, want 429 with Retry-After", resp.Status)
	}
	if resp := stats("198.51.100.8", "tok"); resp.StatusCode != http.StatusOK {
		t.Errorf("the right token from another address: %s, want 200", resp.Status)
	}
	if got := scrape(t, http.DefaultClient, base+"/metrics")[`deploy_tracker_rate_limited_total{limit="token"}`]; got != 1 {
		t.Errorf("rate_limited_total{limit=\"token\"} = %v, want 1", got)
	}

	logs = &logBuffer{}
	cfg = f.config(t)
	cfg.StatsToken, cfg.Log = strings.Repeat("k", MinStatsToken), zerolog.New(logs)
	startServer(t, cfg)
	if strings.Contains(logs.String(), "stats token is short") {
		t.Errorf("a %d-character token is warned about:\n%s", MinStatsToken, logs.String())
	}
}

// TestDashboardHistoryHalt: a halt in a channel's history is the halt's
// entry: signed by the user holding the halt key, when and why the halt
// was signed, not who signed the pointer it halted, when, with what notes.
// So is a halt shown alone, on a channel without history entries.
func TestDashboardHistoryHalt(t *testing.T) {
	seed := seedDashboard(t)
	clk := &clock{t: time.Now().UTC()}
	base := startDashboardTracker(t, seed, clk)
	rolled, halted := seed.published.Add(time.Hour), seed.published.Add(2*time.Hour)
	seed.release(t, rolled, "production", "search to a tenth", publish.Rollout(seed.buildRef(t, 2), 10))
	seed.halt(t, "production", halted, "search crashes on start")
	history := func() []dashboard.Entry {
		t.Helper()
		resp, body := do(t, nil, "GET", base+"/api/apps/shop/channels/production/history", nil, "Authorization", "Bearer "+dashToken)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("history: %s %s", resp.Status, body)
		}
		return decode[struct{ Entries []dashboard.Entry }](t, body).Entries
	}
	check := func(e dashboard.Entry, seq int64, change, by string, issued time.Time, notes string) {
		t.Helper()
		if e.Sequence != seq || e.Change != change || e.By != by || !e.Issued.Equal(issued) || e.Notes != notes || !e.Verified {
			t.Errorf("entry %+v;\nwant sequence %d, change %q, by %q, issued %s, notes %q, verified",
				e, seq, change, by, issued.Format(time.RFC3339), notes)
		}
	}
	got := history()
	if len(got) != 3 {
		t.Fatalf("%d entries, want 3", len(got))
	}
	check(got[0], 3, dashboard.ChangeHalt, dashHalter, halted, "search crashes on start")
	check(got[1], 2, dashboard.ChangeRollout, dashSigner, rolled, "search to a tenth")
	if got[0].Rollout != nil || got[1].Rollout == nil {
		t.Errorf("rollouts %v and %v, want none after the halt, one before", got[0].Rollout, got[1].Rollout)
	}

	// Without history entries, the channel shows its current pointer: the
	// halt.
	if err := os.RemoveAll(filepath.Join(seed.dir, filepath.FromSlash(manifest.HistoryPrefix("shop", "production")))); err != nil {
		t.Fatal(err)
	}
	clk.Set(clk.Now().Add(time.Second))
	got = history()
	if len(got) != 1 {
		t.Fatalf("%d entries without history entries, want the current pointer", len(got))
	}
	check(got[0], 3, "", dashHalter, halted, "search crashes on start")
}
