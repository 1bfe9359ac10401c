package publish

import (
	"errors"
	"testing"
)

func TestCheckZip32RefusesWhatNeedsZip64(t *testing.T) {
	for _, c := range []struct {
		size    int64
		entries int
		ok      bool
	}{
		{1<<32 - 2, 65534, true},
		{1<<32 - 1, 1, false},
		{1 << 33, 1, false},
		{100, 65535, false},
	} {
		err := checkZip32(c.size, c.entries)
		if (err == nil) != c.ok || (err != nil && !errors.Is(err, ErrBadBuild)) {
			t.Errorf("checkZip32(%d, %d) = %v, want ok %v", c.size, c.entries, err, c.ok)
		}
	}
}
