package state

import (
	"strconv"
	"testing"
)

func TestFailedSet(t *testing.T) {
	f := NewFailedSet()
	f.Add("shop", "d1", "1.0.1")
	for _, c := range []struct {
		device, version string
		want            bool
	}{{"d1", "1.0.1", true}, {"d1", "1.0.2", false}, {"d2", "1.0.1", false}} {
		if failed, complete := f.Has("shop", c.device, c.version); failed != c.want || !complete {
			t.Errorf("Has(shop, %s, %s) = %v, %v; want %v, complete", c.device, c.version, failed, complete, c.want)
		}
	}
	// Past MaxFailed, a miss is no longer an answer; what it holds still is.
	for i := range MaxFailed {
		f.Add("kiosk", strconv.Itoa(i), "1")
	}
	if failed, complete := f.Has("shop", "d2", "1.0.1"); failed || complete {
		t.Errorf("a full set answers a miss: %v, %v", failed, complete)
	}
	if failed, _ := f.Has("shop", "d1", "1.0.1"); !failed {
		t.Error("a full set forgot a failure")
	}
}
