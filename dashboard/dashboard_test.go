package dashboard

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os/exec"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cartona/deploy/internal/browsertest"
)

// TestAssetsMatchSources rebuilds the embedded assets from web/src and
// fails if the committed web/dist differs.
func TestAssetsMatchSources(t *testing.T) {
	dir := browsertest.NPM(t)
	cmd := exec.Command("node", "build.mjs", "--check")
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
}

func TestAdoption(t *testing.T) {
	h := func(n int) time.Time { return time.Date(2026, 11, 30, n, 0, 0, 0, time.UTC) }
	now := h(5).Add(20 * time.Minute)
	rows := []Installs{
		{Start: h(1), BuildID: "a-1", Number: 1, Version: "1.0", Devices: 2},
		{Start: h(3), BuildID: "a-1", Number: 1, Version: "1.0", Devices: 1},
		{Start: h(3), BuildID: "a-2", Number: 2, Version: "2.0", Devices: 5},
		{Start: h(5), BuildID: "a-2", Number: 2, Version: "2.0", Devices: 1},
	}
	got := adoption(rows, time.Hour, now, 48)
	want := Adoption{Times: []time.Time{h(1), h(2), h(3), h(4), h(5)}, Series: []Series{
		{BuildID: "a-1", Number: 1, Version: "1.0", Devices: []int64{2, 2, 3, 3, 3}},
		{BuildID: "a-2", Number: 2, Version: "2.0", Devices: []int64{0, 0, 5, 5, 6}},
	}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("adoption over 48 points:\n got %+v\nwant %+v", got, want)
	}
	// Three points: installs before the window count from its first bucket.
	got = adoption(rows, time.Hour, now, 3)
	want = Adoption{Times: []time.Time{h(3), h(4), h(5)}, Series: []Series{
		{BuildID: "a-1", Number: 1, Version: "1.0", Devices: []int64{3, 3, 3}},
		{BuildID: "a-2", Number: 2, Version: "2.0", Devices: []int64{5, 5, 6}},
	}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("adoption over 3 points:\n got %+v\nwant %+v", got, want)
	}
	if got := adoption(nil, 24*time.Hour, now, 30); len(got.Times) != 0 || len(got.Series) != 0 {
		t.Errorf("adoption of nothing = %+v", got)
	}
}

func TestSessions(t *testing.T) {
	now := time.Date(2026, 12, 1, 8, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	s := newSessions("the-token", clock)
	v := s.issue()
	if !s.valid(v) {
		t.Fatalf("a fresh session %q is refused", v)
	}
	for name, bad := range map[string]string{
		"another token's":  newSessions("other-token", clock).issue(),
		"a longer expiry":  "v2.9999999999." + v[len("v2.1764633600."):],
		"no mac":           v[:len(v)-43],
		"the token itself": "the-token",
		"empty":            "",
	} {
		if s.valid(bad) {
			t.Errorf("%s session %q is accepted", name, bad)
		}
	}
	other := s.issue()
	s.revoke(v)
	if s.valid(v) || !s.valid(other) {
		t.Errorf("after signing out one session: it is valid %v, another one %v; want false, true", s.valid(v), s.valid(other))
	}
	v = other
	now = now.Add(SessionTTL)
	if s.valid(v) {
		t.Errorf("a session past %s is accepted", SessionTTL)
	}
	if newSessions("", clock).tokenOK("") {
		t.Error("an empty token matches when none is configured")
	}
}

// testSource is a Source with staged rollouts, which the tracker cannot
// produce until the release model lands.
type testSource struct{ now time.Time }

// Apps: shop has channels in rollout; kiosk has no channel, and one
// hour of adoption.
func (s testSource) Apps(context.Context) ([]string, error) { return []string{"shop", "kiosk"}, nil }

func (s testSource) Channels(_ context.Context, app string) ([]Channel, error) {
	if app == "kiosk" {
		return []Channel{}, nil
	}
	if app != "shop" {
		return nil, fmt.Errorf("app %q: %w", app, ErrNotFound)
	}
	stable, cand := Build{ID: "shop-7", Number: 7, Version: "3.1.0"}, Build{ID: "shop-8", Number: 8, Version: "3.2.0"}
	exp := s.now.Add(200 * 24 * time.Hour)
	return []Channel{
		{Name: "beta", Build: &cand, Sequence: 12, Issued: s.now, Expires: exp,
			Rollout: &Rollout{ID: "r-halt", Candidate: Build{ID: "shop-9", Number: 9, Version: "3.3.0"}, Percent: 5, State: Halted, Why: "crash on start"}},
		{Name: "production", Build: &stable, Sequence: 40, Issued: s.now, Expires: exp,
			Rollout: &Rollout{ID: "r-25", Candidate: cand, Percent: 25, State: Paused, Why: "waiting for support"}},
		{Name: "staging", Build: &cand, Sequence: 3, Issued: s.now, Expires: exp,
			Rollout: &Rollout{ID: "r-run", Candidate: Build{ID: "shop-9", Number: 9, Version: "3.3.0"}, Percent: 50, State: Running}},
	}, nil
}

func (s testSource) History(_ context.Context, app, channel string) ([]Entry, error) {
	stable, cand := Build{ID: "shop-7", Number: 7, Version: "3.1.0"}, Build{ID: "shop-8", Number: 8, Version: "3.2.0"}
	switch channel {
	case "beta": // the halt of its rollout, signed by a tracker's halt key
		return []Entry{{Sequence: 12, Issued: s.now, By: "tracker-eu", Build: &cand, Verified: true, Change: ChangeHalt, Notes: "crash on start"}}, nil
	case "production":
		return []Entry{
			{Sequence: 40, Issued: s.now.Add(-time.Hour), By: "amal", Build: &stable, Verified: true,
				Rollout: &Rollout{ID: "r-25", Candidate: cand, Percent: 25, State: Paused, Why: "waiting for support"}, Change: ChangePause, Notes: "support asked"},
			{Sequence: 39, Verified: false, Problem: "it fails verification (bad_signature)"},
		}, nil
	}
	return []Entry{}, nil
}

func (s testSource) Counters(_ context.Context, app string) ([]Counters, error) {
	if app == "kiosk" {
		return []Counters{}, nil
	}
	return []Counters{{BuildID: "shop-8", Number: 8, Version: "3.2.0", Checks: 90, Downloads: 40, Installs: 30, Failures: 2, Rollbacks: 3, Devices: 35}}, nil
}

func (s testSource) Adoption(_ context.Context, app string, bucket time.Duration) ([]Installs, error) {
	start := s.now.Truncate(bucket)
	if app == "kiosk" {
		return []Installs{{Start: start, BuildID: "kiosk-1", Number: 1, Version: "1.0.0", Devices: 4}}, nil
	}
	return []Installs{
		{Start: start.Add(-2 * bucket), BuildID: "shop-8", Number: 8, Version: "3.2.0", Devices: 10},
		{Start: start, BuildID: "shop-8", Number: 8, Version: "3.2.0", Devices: 20},
	}, nil
}

// TestRolloutInBrowser shows staged rollouts (running, paused and halted,
// with why), a halt and an unverified history entry in headless Chromium.
func TestRolloutInBrowser(t *testing.T) {
	now := time.Now().UTC().Truncate(time.Minute)
	src := testSource{now: now}
	base := serveDashboard(t, Config{Source: src, Token: "rollout-token", Now: func() time.Time { return now }})
	channels, _ := src.Channels(context.Background(), "shop")
	var want []map[string]any
	for _, c := range channels {
		r := c.Rollout
		want = append(want, map[string]any{"name": c.Name, "version": c.Build.Version, "build_id": c.Build.ID, "expires": c.Expires, "sequence": c.Sequence,
			"rollout": map[string]any{"id": r.ID, "version": r.Candidate.Version, "build_id": r.Candidate.ID, "percent": r.Percent, "state": r.State, "why": r.Why}})
	}
	expect := map[string]any{
		"timezone": "America/St_Johns",
		"app":      "shop",
		"apps":     []string{"shop", "kiosk"},
		"channels": want,
		"adoption": map[string]any{"hour": map[string]any{"points": 3, "first": now.Truncate(time.Hour).Add(-2 * time.Hour),
			"series": []map[string]any{{"version": "3.2.0", "build_id": "shop-8", "last": 30}}}},
		"builds": 1,
		"history": map[string]any{
			"beta": []map[string]any{
				{"sequence": 12, "change": "halt", "by": "tracker-eu", "version": "3.2.0", "notes": "crash on start", "issued": now, "verified": true},
			},
			"production": []map[string]any{
				{"sequence": 40, "change": "pause", "by": "amal", "version": "3.1.0", "notes": "support asked", "issued": now.Add(-time.Hour), "verified": true,
					"rollout": map[string]any{"version": "3.2.0", "percent": 25, "state": "paused"}},
				{"sequence": 39, "verified": false},
			},
		},
	}
	browsertest.Run(t, "rollout", base, "rollout-token", expect)
}

// emptySource is a tracker's Source before any app is published.
type emptySource struct{ testSource }

func (emptySource) Apps(context.Context) ([]string, error) { return []string{}, nil }

// TestEmptyInBrowser: a tracker with no app says so, without an empty menu
// or empty sections.
func TestEmptyInBrowser(t *testing.T) {
	base := serveDashboard(t, Config{Source: emptySource{}, Token: "empty-token"})
	browsertest.Run(t, "empty", base, "empty-token", map[string]any{"timezone": "UTC"})
}

// serveDashboard serves a dashboard of cfg on loopback until the test
// ends, and returns its base URL on localhost, where browsers keep a
// Secure cookie over plain HTTP.
func serveDashboard(t *testing.T, cfg Config) string {
	d, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	d.Register(mux)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
	return "http://localhost:" + port
}

// TestRoutes checks answers that need no browser: a tracker without a token
// has the dashboard and API disabled, and the assets route serves only the
// built scripts, styles and icon, with the page headers.
func TestRoutes(t *testing.T) {
	serve := func(token string) string {
		return serveDashboard(t, Config{Source: testSource{now: time.Now()}, Token: token})
	}
	get := func(url string, hdr ...string) (*http.Response, string) {
		req, _ := http.NewRequest("GET", url, nil)
		for i := 0; i+1 < len(hdr); i += 2 {
			req.Header.Set(hdr[i], hdr[i+1])
		}
		resp, err := http.DefaultTransport.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b)
	}
	off := serve("")
	if resp, body := get(off+"/api/apps", "Authorization", "Bearer "); resp.StatusCode != 403 || !strings.Contains(body, "stats_token") {
		t.Errorf("API without a token: %s %s", resp.Status, body)
	}
	if resp, body := get(off + "/dashboard/signin"); resp.StatusCode != 403 || !strings.Contains(body, "disabled") {
		t.Errorf("sign-in without a token: %s %s", resp.Status, body)
	}
	on := serve("tok")
	for path, want := range map[string]int{"app.js": 200, "app.css": 200, "icon.svg": 200, "index.html": 404, "signin.html": 404, "nope.js": 404} {
		resp, _ := get(on + "/dashboard/assets/" + path)
		if resp.StatusCode != want {
			t.Errorf("asset %s: %s, want %d", path, resp.Status, want)
		}
		if want == 200 && resp.Header.Get("Content-Security-Policy") != ContentSecurityPolicy {
			t.Errorf("asset %s without the CSP", path)
		}
	}
	if resp, _ := get(on + "/dashboard"); resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/dashboard/signin" {
		t.Errorf("dashboard without a session: %s to %q", resp.Status, resp.Header.Get("Location"))
	}
}

// TestWrongTokensWait guesses tokens over HTTP, by bearer and through the
// sign-in form: after guessBurst wrong tokens an address waits, even with
// the right token, while another address is not slowed; tries come back
// over time.
func TestWrongTokensWait(t *testing.T) {
	now := time.Date(2026, 12, 1, 8, 0, 0, 0, time.UTC)
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	base := serveDashboard(t, Config{Source: testSource{now: now}, Token: "the-token", Now: clock,
		ClientAddr: func(r *http.Request) string { return r.Header.Get("X-Test-Addr") }})
	try := func(addr, token string, form bool) *http.Response {
		req, _ := http.NewRequest("GET", base+"/api/apps", nil)
		if form {
			req, _ = http.NewRequest("POST", base+"/dashboard/signin", strings.NewReader(url.Values{"token": {token}}.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		} else {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		req.Header.Set("X-Test-Addr", addr)
		resp, err := http.DefaultTransport.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp
	}
	for i := range guessBurst {
		if resp := try("192.0.2.1", fmt.Sprintf("guess-%d", i), i%2 == 0); resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("wrong token %d: %s, want 401", i+1, resp.Status)
		}
	}
	for _, form := range []bool{false, true} {
		resp := try("192.0.2.1", "the-token", form)
		if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") != "6" {
			t.Errorf("the right token after %d wrong ones (form %v): %s, Retry-After %q; want 429 and 6", guessBurst, form, resp.Status, resp.Header.Get("Retry-After"))
		}
	}
	if resp := try("192.0.2.2", "the-token", false); resp.StatusCode != http.StatusOK {
		t.Errorf("another address with the right token: %s, want 200", resp.Status)
	}
	mu.Lock()
	now = now.Add(guessEvery)
	mu.Unlock()
	if resp := try("192.0.2.1", "the-token", true); resp.StatusCode != http.StatusSeeOther {
		t.Errorf("the right token once a try came back: %s, want 303 to the dashboard", resp.Status)
	}
	if resp := try("192.0.2.1", "guess-again", false); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("a wrong token with one try left: %s, want 401", resp.Status)
	}
	if resp := try("192.0.2.1", "guess-more", false); resp.StatusCode != http.StatusTooManyRequests {
		t.Errorf("a wrong token with no try left: %s, want 429", resp.Status)
	}
}

func TestGuardForgets(t *testing.T) {
	now := time.Date(2026, 12, 1, 8, 0, 0, 0, time.UTC)
	g := newGuard(func() time.Time { return now })
	for range guessBurst {
		g.take("198.51.100.1") // held back from here on
	}
	for i := range maxGuessers + 5 {
		g.take(fmt.Sprintf("10.%d.%d.%d", i>>16, i>>8&255, i&255))
	}
	if len(g.tries) >= maxGuessers {
		t.Errorf("%d addresses remembered, want under %d", len(g.tries), maxGuessers)
	}
}

// TestGuardCountsIPv6ByPrefix: the addresses of one /64 share their tries,
// another /64 has its own.
func TestGuardCountsIPv6ByPrefix(t *testing.T) {
	now := time.Date(2026, 12, 1, 8, 0, 0, 0, time.UTC)
	g := newGuard(func() time.Time { return now })
	for i := range guessBurst {
		if ok, _ := g.take(fmt.Sprintf("2001:db8:1:2::%x", i+1)); !ok {
			t.Fatalf("try %d of the /64 held back", i+1)
		}
	}
	if ok, _ := g.take("2001:db8:1:2:ffff::1"); ok {
		t.Error("another address of the same /64 gets a try past the burst")
	}
	if ok, _ := g.take("2001:db8:1:3::1"); !ok {
		t.Error("another /64 is held back")
	}
}

// TestGuardIsAtomic takes tries from one address at once: no more than the
// burst get through, however the requests interleave.
func TestGuardIsAtomic(t *testing.T) {
	now := time.Date(2026, 12, 1, 8, 0, 0, 0, time.UTC)
	g := newGuard(func() time.Time { return now })
	var wg sync.WaitGroup
	var mu sync.Mutex
	passed := 0
	for range 100 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if ok, _ := g.take("192.0.2.9"); ok {
				mu.Lock()
				passed++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if passed != guessBurst {
		t.Errorf("%d of 100 concurrent tries got through, want %d", passed, guessBurst)
	}
}
