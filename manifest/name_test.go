package manifest

import (
	"regexp"
	"strings"
	"testing"
)

// TestIsName checks the hand-written name check against the regular
// expression the format states.
func TestIsName(t *testing.T) {
	re := regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,63}$`)
	cases := []string{"", "a", "retailer", "re.tail_er-2", "-a", ".a", "_a", "A", "a b", "a\n", "é", "a/b",
		strings.Repeat("a", 64), strings.Repeat("a", 65), "9", "a..", "ab\x00"}
	for c := range 256 {
		cases = append(cases, "a"+string(rune(c)), string(rune(c)))
	}
	for _, s := range cases {
		if got, want := isName(s), re.MatchString(s); got != want {
			t.Errorf("isName(%q) = %v, want %v", s, got, want)
		}
	}
}
