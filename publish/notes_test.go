package publish_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/cartona/deploy/manifest"
	"github.com/cartona/deploy/publish"
	"github.com/cartona/deploy/store"
)

// fullRef is a build reference as large as an upload can make one: the
// longest version (128 '<', which JSON escapes to 6 bytes each), the
// longest native bounds, a CRC-32 and a file manifest.
func fullRef(n int64) manifest.BuildRef {
	r := ref(n)
	r.Version = strings.Repeat("<", publish.MaxVersionLen-3) + fmt.Sprintf("%03d", n)
	r.MinNative, r.MaxNative = "1.0.0.0", "999999999.999999999.999999999.999999999"
	r.CRC32, r.FilesSHA256, r.FilesSize = "0badc0de", strings.Repeat("e", 64), manifest.MaxFileManifestSize
	return r
}

func TestUploadWithEscapedNotesVerifiesOrWritesNothing(t *testing.T) {
	eachStore(t, testEscapedNotes)
}

// An upload's notes go into its build record and the channel's
// latest.json, where JSON escapes '<' and U+2028 to 6 bytes each. On a
// channel as full as it gets (stable, candidate, 8 fallbacks, each with
// the longest version), the longest notes that upload accepts publish a
// pointer that verifies, and one more character is refused before
// anything is written.
func testEscapedNotes(t *testing.T, newStore func(t *testing.T) store.Store) {
	f := newFixture(t, newStore(t))
	ctx := context.Background()
	p := f.publisher()
	if _, _, err := p.UpdatePointer(ctx, "retailer", "production", func(*manifest.Latest) (*manifest.Latest, error) {
		l := &manifest.Latest{Build: fullRef(100), Candidate: &manifest.Candidate{Build: fullRef(99), Percent: 50, Rollout: "b99-s1"}}
		for n := int64(98); n > 90; n-- {
			l.Fallbacks = append(l.Fallbacks, fullRef(n))
		}
		return l, nil
	}); err != nil {
		t.Fatal(err)
	}
	upload := 0
	for _, tc := range []struct{ name, unit string }{{"ascii", "a"}, {"newlines", "a\n"}, {"lt", "<"}, {"u2028", "\u2028"}} {
		upload++
		www := writeTree(t, map[string]string{"index.html": fmt.Sprintf("<html>%d", upload), "main.js": "notifyAppReady()"})
		req := func(n int) publish.Request {
			return publish.Request{App: "retailer", Dir: www, Rollout: 10, Version: strings.Repeat("<", publish.MaxVersionLen-3) + fmt.Sprintf("%03d", upload),
				MinNative: "1.0.0.0", MaxNative: "999999999.999999999.999999999.999999999", Notes: strings.Repeat(tc.unit, n)}
		}
		// The most units a dry run accepts.
		lo, hi := 0, publish.MaxNotesLen/len(tc.unit)+1
		for lo+1 < hi {
			mid := (lo + hi) / 2
			r := req(mid)
			r.DryRun = true
			if _, err := p.Upload(ctx, r); err == nil {
				lo = mid
			} else {
				hi = mid
			}
		}
		t.Logf("notes of %s: at most %d units (%d bytes)", tc.name, lo, lo*len(tc.unit))
		if lo == 0 {
			t.Fatalf("%s: no notes accepted", tc.name)
		}
		if lo*len(tc.unit) < publish.MaxNotesLen {
			before := f.keys(t)
			if _, err := p.Upload(ctx, req(lo+1)); err == nil || !strings.Contains(err.Error(), "notes") {
				t.Fatalf("%s: %d units: err = %v, want a refusal that names notes", tc.name, lo+1, err)
			}
			if after := f.keys(t); !slices.Equal(before, after) {
				t.Fatalf("%s: a refused upload wrote %v", tc.name, diffKeys(before, after))
			}
		}
		res, err := p.Upload(ctx, req(lo))
		if err != nil {
			t.Fatalf("%s: %d units, accepted by a dry run: %v", tc.name, lo, err)
		}
		l := f.pointer(t, "production")
		if res.Outcome != publish.Published || l.Candidate == nil || l.Candidate.Build.ID != res.BuildID || len(l.Fallbacks) != manifest.MaxFallbacks || l.Notes != req(lo).Notes {
			t.Fatalf("%s: upload = %+v; latest = %+v", tc.name, res, l)
		}
	}
}

func diffKeys(before, after []string) []string {
	var out []string
	for _, k := range after {
		if !slices.Contains(before, k) {
			out = append(out, k)
		}
	}
	return out
}
