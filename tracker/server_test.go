package tracker

import (
	"strings"
	"testing"

	"github.com/rs/zerolog"
)

// TestWarnWithoutPublicURL: without public_url, download URLs come from
// each request, which is wrong behind a TLS proxy that sends no
// X-Forwarded-Proto; the operator is told at startup.
func TestWarnWithoutPublicURL(t *testing.T) {
	f := newFixture(t)
	for _, public := range []string{"", "https://updates.example.com"} {
		var logs logBuffer
		cfg := f.config(t)
		cfg.PublicURL, cfg.Log = public, zerolog.New(&logs)
		startServer(t, cfg)
		warned := strings.Contains(logs.String(), `"level":"warn"`) && strings.Contains(logs.String(), "set public_url")
		if warned != (public == "") {
			t.Errorf("PublicURL %q: warned %v; log:\n%s", public, warned, logs.String())
		}
	}
}
