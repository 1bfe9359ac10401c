package state

import (
	"hash/maphash"
	"sync"
)

// maxSeen bounds the Seen set: about 16 MB at most.
const maxSeen = 1 << 20

// Seen remembers which seen and cohort marks are stored, so that a commit
// does not insert again the marks of every update check of a known device:
// marks are never removed. It keeps a 64-bit hash of each, so a collision (about one
// in 10^13 pairs) can at worst leave one device out of a build's device
// count; failures are never skipped this way.
type Seen struct {
	seed maphash.Seed
	mu   sync.RWMutex
	set  map[uint64]struct{}
}

// NewSeen returns an empty set.
func NewSeen() *Seen { return &Seen{seed: maphash.MakeSeed(), set: map[uint64]struct{}{}} }

func (s *Seen) hash(m Mark) uint64 {
	var h maphash.Hash
	h.SetSeed(s.seed)
	h.WriteString(m.App)
	h.WriteByte(0)
	h.WriteString(m.Version)
	h.WriteByte(0)
	h.WriteString(m.Device)
	h.WriteByte(0)
	h.WriteString(m.Kind)
	return h.Sum64()
}

// Unstored returns the marks that may not be stored yet: all but the seen
// and cohort marks known to be. It reuses the array of marks.
func (s *Seen) Unstored(marks []Mark) []Mark {
	out := marks[:0]
	s.mu.RLock()
	defer s.mu.RUnlock()
	for _, m := range marks {
		if remembered(m.Kind) {
			if _, ok := s.set[s.hash(m)]; ok {
				continue
			}
		}
		out = append(out, m)
	}
	return out
}

// Stored records that the seen and cohort marks among marks are stored
// (committed, new or not).
func (s *Seen) Stored(marks []Mark) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, m := range marks {
		if remembered(m.Kind) && len(s.set) < maxSeen {
			s.set[s.hash(m)] = struct{}{}
		}
	}
}

// remembered reports whether Seen keeps marks of a kind: those that every
// update check of a device would insert again.
func remembered(kind string) bool { return kind == MarkSeen || kind == MarkCohort }
