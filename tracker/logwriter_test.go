package tracker

import (
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

// TestLogWriter: info lines wait in the buffer, a warning writes them and
// itself at once, in order, and Close writes the rest.
func TestLogWriter(t *testing.T) {
	var out logBuffer
	lw := NewLogWriter(&out, time.Hour)
	log := zerolog.New(lw)
	log.Info().Msg("first")
	if got := out.String(); got != "" {
		t.Fatalf("an info line was written before its interval: %q", got)
	}
	log.Warn().Msg("second")
	if got := out.String(); !strings.Contains(got, "first") || strings.Index(got, "first") > strings.Index(got, "second") {
		t.Fatalf("after a warning: %q", got)
	}
	log.Info().Msg("third")
	if err := lw.Close(); err != nil {
		t.Fatal(err)
	}
	if got := out.String(); !strings.HasSuffix(strings.TrimSpace(got), `"message":"third"}`) {
		t.Fatalf("after Close: %q", got)
	}
	log.Info().Msg("fourth")
	if got := out.String(); !strings.Contains(got, "fourth") {
		t.Fatalf("a line after Close is not written at once: %q", got)
	}
}
