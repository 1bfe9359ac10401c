package manifest

import (
	"fmt"
	"math/rand/v2"
	"regexp"
	"testing"
)

// numberLen scans by hand what the format's grammar for a JSON number
// matches; it must agree with that grammar on every input.
func TestNumberLen(t *testing.T) {
	grammar := regexp.MustCompile(`^-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`)
	check := func(s string) {
		if got, want := numberLen(s), len(grammar.FindString(s)); got != want {
			t.Errorf("numberLen(%q) = %d, want %d", s, got, want)
		}
	}
	for _, s := range []string{"", "-", "0", "-0", "01", "10", "1.", "1.5", "1.5.", "1e", "1e+", "1e5", "1E-07", "1.e5", "-1.25e+3,", "0x1", "+1", ".5", "9}", "00"} {
		check(s)
	}
	const alphabet = "0123456789-+.eE ,"
	r := rand.New(rand.NewPCG(1, 2))
	for range 100_000 {
		b := make([]byte, r.IntN(8))
		for i := range b {
			b[i] = alphabet[r.IntN(len(alphabet))]
		}
		check(string(b))
	}
}

// Keys of an object are unique whether it has few (searched) or many
// (hashed).
func TestDuplicateKeys(t *testing.T) {
	for _, n := range []int{2, 15, 16, 17, 40} {
		var v map[string]int64
		doc := "{"
		for i := range n {
			doc += fmt.Sprintf(`"k%d":1,`, i)
		}
		if err := decodeStrict([]byte(doc+`"last":2}`), &v); err != nil || len(v) != n+1 {
			t.Errorf("%d unique keys: %v, %d decoded", n+1, err, len(v))
		}
		for _, dup := range []string{`"k0"`, fmt.Sprintf(`"k%d"`, n-1)} {
			if err := decodeStrict([]byte(doc+dup+`:2}`), &v); err == nil {
				t.Errorf("%d keys, then %s again: decoded", n, dup)
			}
		}
	}
}
