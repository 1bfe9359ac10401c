package manifest_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/cartona/deploy/manifest"
)

// Raising a rollout's percentage only adds devices, and a cohort holds
// about its share of devices.
func TestCohortOnlyGrows(t *testing.T) {
	const devices = 4000
	in := map[string]bool{}
	for percent := int64(0); percent <= 100; percent += 5 {
		c := &manifest.Candidate{Percent: percent, Rollout: "r1"}
		n := 0
		for i := range devices {
			id := fmt.Sprintf("%08x-device", i*2654435761)
			got := manifest.InCohort("retailer", "production", c, id)
			if in[id] && !got {
				t.Fatalf("device %s left the cohort when the percentage rose to %d", id, percent)
			}
			in[id] = got
			if got {
				n++
			}
		}
		if share := float64(n) * 100 / devices; share < float64(percent)-3 || share > float64(percent)+3 {
			t.Errorf("%d%% rollout holds %.1f%% of devices", percent, share)
		}
	}
}

// Sign refuses what the verifiers would refuse, so that deploy never
// writes a pointer that no device accepts.
func TestSignRefusesWhatVerifiersRefuse(t *testing.T) {
	k := seedKey(3)
	now := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	l := manifest.Latest{App: "a", Channel: "c", Sequence: manifest.MaxInt, Issued: now, Expires: now.Add(time.Hour), Build: manifest.BuildRef{ID: "a-1", Number: 1, Version: "1", Bundle: "x", SHA256: "x", Size: 1}}
	if _, err := manifest.Sign(manifest.TypeLatest, l, k); err != nil {
		t.Fatalf("sequence MaxInt: %v", err)
	}
	l.Sequence = manifest.MaxInt + 1
	if _, err := manifest.Sign(manifest.TypeLatest, l, k); err == nil || !strings.Contains(err.Error(), "integer") {
		t.Fatalf("sequence MaxInt+1: %v, want an error about the integer", err)
	}
	l.Sequence, l.Issued = 1, now.In(time.FixedZone("CET", 3600))
	if _, err := manifest.Sign(manifest.TypeLatest, l, k); err == nil || !strings.Contains(err.Error(), "time") {
		t.Fatalf("time not in UTC: %v, want an error about the time", err)
	}
}

func TestParsePublicKeyRefusesWeakKeys(t *testing.T) {
	for _, k := range []string{
		"ed25519:AQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",     // identity
		"ed25519:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",     // order 4
		"ed25519:7f///////////////////////////////////////38=",     // y = p
		"ed25519:iojj3XQJ8ZX9UtstPLpdcspnCb8dlBIb83SIAbQPb1w=\r\n", // fine: whitespace around is trimmed
	} {
		_, err := manifest.ParsePublicKey(k)
		if want := strings.HasSuffix(k, "\r\n"); (err == nil) != want {
			t.Errorf("ParsePublicKey(%q) = %v", k, err)
		}
	}
}
