package tracker

import (
	"net/http"
	"strings"
	"testing"
)

// TestCORS answers preflights and adds CORS headers to every answer, for
// the WebView origins of Capacitor apps.
func TestCORS(t *testing.T) {
	f := newFixture(t)
	ref := f.publish("retailer", "production", "1")
	_, base := startServer(t, f.config(t))

	for _, origin := range []string{"capacitor://localhost", "http://localhost", "https://localhost"} {
		for _, c := range []struct{ method, path, reqHeaders string }{
			{"GET", "/build/latest?app=retailer&device=" + deviceA, ""},
			{"POST", "/capgo/retailer/updates", "content-type"},
			{"POST", "/capgo/retailer/stats", "Content-Type, X-Custom"},
		} {
			resp, _ := do(t, nil, "OPTIONS", base+c.path, nil,
				"Origin", origin, "Access-Control-Request-Method", c.method, "Access-Control-Request-Headers", c.reqHeaders)
			h := resp.Header
			if resp.StatusCode != http.StatusNoContent ||
				h.Get("Access-Control-Allow-Origin") != "*" ||
				!strings.Contains(h.Get("Access-Control-Allow-Methods"), c.method) ||
				!strings.Contains(strings.ToLower(h.Get("Access-Control-Allow-Headers")), "content-type") {
				t.Errorf("preflight %s %s from %s: %s %v", c.method, c.path, origin, resp.Status, h)
			}
			if c.reqHeaders == "Content-Type, X-Custom" && !strings.Contains(h.Get("Access-Control-Allow-Headers"), "X-Custom") {
				t.Errorf("requested header not allowed: %q", h.Get("Access-Control-Allow-Headers"))
			}
		}
	}

	// Answers, errors and redirects all carry the header.
	for _, c := range []struct{ method, path, body string }{
		{"GET", "/build/latest?app=retailer&device=" + deviceA, ""},
		{"GET", "/build/latest?app=retailer", ""},
		{"GET", "/build/download?id=" + ref.ID + "&device=" + deviceA, ""},
		{"GET", "/build/download/complete?id=" + ref.ID + "&device=" + deviceA, ""},
		{"POST", "/capgo/retailer/updates", `{"device_id":"` + deviceA + `"}`},
		{"POST", "/capgo/retailer/stats", `[]`},
		{"GET", "/nowhere", ""},
	} {
		var body []byte
		if c.body != "" {
			body = []byte(c.body)
		}
		resp, _ := do(t, noRedirects, c.method, base+c.path, body, "Origin", "capacitor://localhost")
		if resp.Header.Get("Access-Control-Allow-Origin") != "*" {
			t.Errorf("%s %s: %s without Access-Control-Allow-Origin", c.method, c.path, resp.Status)
		}
	}
}
