package manifest

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
)

// LinkTo returns the [Link] to a stored envelope: its sequence and the
// digest of its bytes. Publish puts it in the next pointer's Previous.
func LinkTo(sequence int64, data []byte) Link {
	sum := sha256.Sum256(data)
	return Link{Sequence: sequence, SHA256: hex.EncodeToString(sum[:])}
}

// VerifyHistory checks a channel's history: entries are the bytes of
// history/<sequence>.json in increasing sequence order. Each must verify
// against the ACL as a latest.json would (its expiry aside), and each after
// the first must link to the one before it: its previous link (a halt's
// Previous) names that entry's sequence and the SHA-256 of its bytes. It
// returns the verified pointers, or the first rule broken.
func (a *ACL) VerifyHistory(app, channel string, entries [][]byte) ([]*Latest, error) {
	out := make([]*Latest, 0, len(entries))
	for i, data := range entries {
		l, err := a.verifyEntry(data, Expect{App: app, Channel: channel}, false)
		if err != nil {
			return out, fmt.Errorf("history entry %d: %w", i, err)
		}
		if i > 0 {
			want := LinkTo(out[i-1].Sequence, entries[i-1])
			if got := l.link(); got == nil || *got != want {
				return out, &Error{RuleHistoryGap, fmt.Sprintf("sequence %d does not link to sequence %d with sha256 %s", l.Sequence, want.Sequence, want.SHA256)}
			}
		}
		out = append(out, l)
	}
	return out, nil
}

// VerifyHistoryEntry verifies, on its own, the history entry stored at
// history/<seq>.json: as a latest.json (or halt) would verify, its expiry
// and link aside, and it must be the pointer at seq.
func (a *ACL) VerifyHistoryEntry(app, channel string, seq int64, data []byte) (*Latest, error) {
	l, err := a.verifyEntry(data, Expect{App: app, Channel: channel}, false)
	if err == nil && l.Sequence != seq {
		return nil, &Error{RuleMalformed, fmt.Sprintf("stored as sequence %d but is sequence %d", seq, l.Sequence)}
	}
	return l, err
}

// verifyEntry verifies a latest.json or a halt, with or without expiry.
func (a *ACL) verifyEntry(data []byte, exp Expect, checkExpiry bool) (*Latest, error) {
	env, err := parseEnvelope(data, MaxLatestSize, TypeLatest, TypeHalt)
	if err != nil {
		return nil, err
	}
	if env.PayloadType == TypeHalt {
		return a.verifyHalt(env, exp, checkExpiry)
	}
	return a.verifyPointer(env, exp, checkExpiry)
}

// link is the entry's link to the one before it.
func (l *Latest) link() *Link {
	if l.Halted != nil {
		return &l.Halted.Previous
	}
	return l.Previous
}
