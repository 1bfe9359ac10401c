package publish

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"sort"

	"github.com/cartona/deploy/manifest"
	"github.com/cartona/deploy/store"
)

// HistoryEntry is one stored pointer of a channel's history.
type HistoryEntry struct {
	Sequence int64  `json:"sequence"`
	Key      string `json:"key"`
	// Pointer is the entry, verified against the ACL (expiry aside); nil
	// when it does not verify, and Problem says why.
	Pointer *manifest.Latest `json:"pointer,omitempty"`
	Problem string           `json:"problem,omitempty"`
	// Served is true for the entries of the chain that leads to the
	// channel's latest.json; others never became latest.json.
	Served bool `json:"served"`
	data   []byte
}

// History is a channel's history: its entries, newest first, and the
// chain of pointers that lead to latest.json, checked link by link.
type History struct {
	Entries []HistoryEntry `json:"entries"`
	// Chain holds the served pointers, newest (latest.json) first.
	Chain []*manifest.Latest `json:"-"`
	// Gap, if not empty, says where the chain breaks: a missing or
	// altered entry, or a chain that starts over.
	Gap string `json:"gap,omitempty"`
	// Below is, with a gap, the sequence the chain could not be followed
	// past: entries under it are not known to have been served or not.
	Below int64 `json:"-"`
	// Deleted reports a channel without latest.json (deploy channel
	// delete): its chain is read from its newest entry.
	Deleted bool `json:"deleted,omitempty"`
}

// ReadHistory reads and verifies a channel's history: every entry on its
// own, then the chain from latest.json back through each pointer's link
// (manifest.ACL.VerifyHistory checks it once more whole). Only a store
// error fails; what does not verify is reported in the result.
func ReadHistory(ctx context.Context, s store.Store, acl *manifest.ACL, app, channel string) (*History, error) {
	entries, err := readEntries(ctx, s, acl, app, channel)
	if err != nil {
		return nil, err
	}
	h := &History{Entries: entries}
	latest, _, err := store.ReadSmall(ctx, s, manifest.LatestKey(app, channel), manifest.MaxLatestSize)
	switch {
	case errors.Is(err, fs.ErrNotExist) && len(entries) > 0: // a deleted channel: from its last pointer
		h.Deleted, latest = true, entries[0].data
	case errors.Is(err, fs.ErrNotExist):
		return h, nil
	case err != nil && !errors.Is(err, store.ErrTooLarge):
		return nil, err
	}
	h.chain(acl, app, channel, latest)
	return h, nil
}

// readEntries reads every history entry, newest first, each verified.
func readEntries(ctx context.Context, s store.Store, acl *manifest.ACL, app, channel string) ([]HistoryEntry, error) {
	infos, err := s.List(ctx, manifest.HistoryPrefix(app, channel))
	if err != nil {
		return nil, err
	}
	var out []HistoryEntry
	for _, in := range infos {
		seq, ok := manifest.ParseHistoryKey(app, channel, in.Key)
		if !ok {
			continue
		}
		e := HistoryEntry{Sequence: seq, Key: in.Key}
		e.data, _, err = store.ReadSmall(ctx, s, in.Key, manifest.MaxLatestSize)
		if err != nil && !errors.Is(err, store.ErrTooLarge) {
			return nil, err
		}
		if err == nil {
			e.Pointer, err = acl.VerifyHistoryEntry(app, channel, seq, e.data)
		}
		if err != nil {
			e.Pointer, e.Problem = nil, err.Error()
		}
		out = append(out, e)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Sequence > out[j].Sequence })
	return out, nil
}

// chain follows the links from latest.json back, marking served entries.
func (h *History) chain(acl *manifest.ACL, app, channel string, latest []byte) {
	bySeq := map[int64]*HistoryEntry{}
	for i := range h.Entries {
		bySeq[h.Entries[i].Sequence] = &h.Entries[i]
	}
	l, err := acl.VerifyHistory(app, channel, [][]byte{latest})
	if err != nil {
		h.Gap, h.Below = fmt.Sprintf("latest.json does not verify (%v)", err), math.MaxInt64
		return
	}
	e := bySeq[l[0].Sequence]
	if e == nil || !bytes.Equal(e.data, latest) {
		h.Gap, h.Below = fmt.Sprintf("latest.json (sequence %d) is not in the history", l[0].Sequence), math.MaxInt64
		return
	}
	var served [][]byte
	for e != nil && e.Pointer != nil {
		e.Served = true
		h.Chain = append(h.Chain, e.Pointer)
		served = append([][]byte{e.data}, served...)
		link := linkOf(e.Pointer)
		if link == nil {
			if oldest := h.Entries[len(h.Entries)-1].Sequence; oldest < e.Sequence {
				h.Gap, h.Below = fmt.Sprintf("the chain starts over at sequence %d (its latest.json was unreadable before); older entries are not linked", e.Sequence), e.Sequence
			}
			break
		}
		prev := bySeq[link.Sequence]
		if prev == nil || prev.Pointer == nil || manifest.LinkTo(link.Sequence, prev.data) != *link {
			h.Gap, h.Below = fmt.Sprintf("sequence %d links to sequence %d, which is missing from the history, altered or does not verify", e.Sequence, link.Sequence), e.Sequence
			break
		}
		e = prev
	}
	if _, err := acl.VerifyHistory(app, channel, served); err != nil && h.Gap == "" {
		h.Gap = err.Error()
	}
}

// linkOf is a verified pointer's link to the one before it.
func linkOf(l *manifest.Latest) *manifest.Link {
	if l.Halted != nil {
		return &l.Halted.Previous
	}
	return l.Previous
}
