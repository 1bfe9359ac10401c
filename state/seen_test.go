package state

import "testing"

func TestSeen(t *testing.T) {
	s := NewSeen()
	seen := func(device string) Mark { return Mark{App: "shop", Version: "1.0.1", Device: device, Kind: MarkSeen} }
	failed := Mark{App: "shop", Version: "1.0.1", Device: "d1", Kind: MarkFailed}
	if got := s.Unstored([]Mark{seen("d1"), failed}); len(got) != 2 {
		t.Fatalf("before any commit, Unstored kept %v; want both", got)
	}
	s.Stored([]Mark{seen("d1"), failed})
	got := s.Unstored([]Mark{seen("d1"), failed, seen("d2"), {App: "shop", Version: "1.0.2", Device: "d1", Kind: MarkSeen}})
	if len(got) != 3 || got[0] != failed || got[1] != seen("d2") || got[2].Version != "1.0.2" {
		t.Fatalf("Unstored = %v; want all but d1's stored seen mark (failures are always kept)", got)
	}
}
