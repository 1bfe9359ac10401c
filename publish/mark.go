package publish

import (
	"context"
	"encoding/json"
	"errors"
	"io/fs"
	"slices"
	"strings"
	"time"

	"github.com/cartona/deploy/manifest"
	"github.com/cartona/deploy/store"
)

// marks are the objects a prune keeps.
type marks struct {
	keys map[string]bool
	kept []int64 // build numbers kept
	// allFiles is set when a kept build's file manifest could not be read:
	// its files are unknown, so no file object is removed.
	allFiles bool
	warnings []string
}

// mark returns what a prune keeps: the builds that a channel's pointer
// names, that each channel would roll back to, that a history entry within
// OlderThan names, the newest Keep,
// those recorded within OlderThan or Grace, and for each of them its
// record, bundle, file manifest and files. Pointers are read whether they
// verify or not: keeping too much is safe.
func (p *Publisher) mark(ctx context.Context, opt PruneOptions, now time.Time, objs map[string]store.Info) (*marks, error) {
	m := &marks{keys: map[string]bool{}}
	var recent func(store.Info) bool
	if opt.OlderThan > 0 {
		recent = func(in store.Info) bool { return in.ModTime.After(now.Add(-opt.OlderThan)) }
	}
	if err := p.markPointers(ctx, opt.App, m, recent); err != nil {
		return nil, err
	}
	var numbers []int64
	for key := range objs {
		if n, ok := manifest.ParseBuildKey(opt.App, key); ok {
			numbers = append(numbers, n)
		}
	}
	slices.Sort(numbers)
	for i, n := range slices.Backward(numbers) {
		in := objs[manifest.BuildKey(opt.App, n)]
		if len(numbers)-1-i < opt.Keep || recent != nil && recent(in) || in.ModTime.After(now.Add(-opt.Grace)) {
			if err := p.markRecord(ctx, opt.App, n, m); err != nil {
				return nil, err
			}
		}
	}
	for _, n := range numbers {
		if m.keys[manifest.BuildKey(opt.App, n)] {
			m.kept = append(m.kept, n)
		}
	}
	return m, nil
}

// markPointers marks the builds of every channel's latest.json, the build
// each channel would roll back to, and, when recent is set, the builds of
// its history entries for which recent is true.
func (p *Publisher) markPointers(ctx context.Context, app string, m *marks, recent func(store.Info) bool) error {
	infos, err := p.Store.List(ctx, manifest.ChannelsPrefix(app))
	if err != nil {
		return err
	}
	history := map[string][]int64{} // sequences by channel
	for _, in := range infos {
		if channel, seq, ok := historyEntry(app, in.Key); ok {
			history[channel] = append(history[channel], seq)
		}
	}
	for _, in := range infos {
		_, channel, latest := manifest.ParseLatestKey(in.Key)
		if !latest && (recent == nil || !isHistoryKey(app, in.Key) || !recent(in)) {
			continue
		}
		data, err := p.readPointer(ctx, in.Key)
		if err != nil {
			return err
		}
		refs := pointerRefs(data)
		if latest {
			prev, err := p.rollbackRef(ctx, app, channel, data, len(history[channel]))
			if err != nil {
				return err
			}
			refs = append(refs, prev...)
		}
		for _, ref := range refs {
			if err := p.markRef(ctx, app, ref, m); err != nil {
				return err
			}
		}
	}
	return nil
}

// readPointer reads a pointer's bytes: nil when it is gone, or too large
// for any device.
func (p *Publisher) readPointer(ctx context.Context, key string) ([]byte, error) {
	data, _, err := store.ReadSmall(ctx, p.Store, key, manifest.MaxLatestSize)
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, store.ErrTooLarge) {
		return nil, nil
	}
	return data, err
}

// rollbackRef returns the builds `deploy rollback` would go back to on a
// channel whose latest.json is latest: following the links from it, as a
// rollback follows the served chain, those of the first pointer whose
// stable build differs (its stable build and its fallbacks, which a
// rollback brings back).
// Pointers are read without verification (keeping too much is safe), at
// most entries of them; a gap ends the walk.
func (p *Publisher) rollbackRef(ctx context.Context, app, channel string, latest []byte, entries int) ([]manifest.BuildRef, error) {
	cur, link, ok := pointerLink(latest)
	for ; ok && link != nil && entries > 0; entries-- {
		data, err := p.readPointer(ctx, manifest.HistoryKey(app, channel, link.Sequence))
		if err != nil {
			return nil, err
		}
		b, prev, found := pointerLink(data)
		if found && b.ID != cur.ID {
			return pointerRefs(data), nil
		}
		if prev != nil && prev.Sequence >= link.Sequence {
			break // links only go back
		}
		ok, link = found, prev
	}
	return nil, nil
}

// pointerLink returns the stable build of a pointer or halt and its link
// to the pointer before it (for a halt, the halted pointer), read without
// verification; ok is false for anything else.
func pointerLink(data []byte) (stable manifest.BuildRef, prev *manifest.Link, ok bool) {
	var env manifest.Envelope
	if json.Unmarshal(data, &env) != nil {
		return stable, nil, false
	}
	switch env.PayloadType {
	case manifest.TypeHalt:
		var h manifest.Halt
		if json.Unmarshal(env.Payload, &h) != nil {
			return stable, nil, false
		}
		inner, _ := json.Marshal(h.Pointer)
		stable, _, ok = pointerLink(inner)
		return stable, &h.Previous, ok
	case manifest.TypeLatest:
		var l manifest.Latest
		if json.Unmarshal(env.Payload, &l) != nil {
			return stable, nil, false
		}
		return l.Build, l.Previous, true
	}
	return stable, nil, false
}

// historyEntry parses key as a history entry of one of app's channels.
func historyEntry(app, key string) (channel string, seq int64, ok bool) {
	channel, _, _ = strings.Cut(strings.TrimPrefix(key, manifest.ChannelsPrefix(app)), "/")
	seq, ok = manifest.ParseHistoryKey(app, channel, key)
	return channel, seq, ok
}

// isHistoryKey reports whether key is a history entry of one of app's
// channels.
func isHistoryKey(app, key string) bool {
	_, _, ok := historyEntry(app, key)
	return ok
}

// pointerRefs returns the builds a pointer or halt names: stable,
// candidate and fallbacks. Nothing is verified; unreadable data names
// nothing.
func pointerRefs(data []byte) []manifest.BuildRef {
	var env manifest.Envelope
	if json.Unmarshal(data, &env) != nil {
		return nil
	}
	if env.PayloadType == manifest.TypeHalt {
		var h manifest.Halt
		if json.Unmarshal(env.Payload, &h) != nil {
			return nil
		}
		inner, _ := json.Marshal(h.Pointer)
		return pointerRefs(inner)
	}
	var l manifest.Latest
	if env.PayloadType != manifest.TypeLatest || json.Unmarshal(env.Payload, &l) != nil {
		return nil
	}
	refs := append([]manifest.BuildRef{l.Build}, l.Fallbacks...)
	if l.Candidate != nil {
		refs = append(refs, l.Candidate.Build)
	}
	return refs
}

// markRecord marks build number n of app through its record.
func (p *Publisher) markRecord(ctx context.Context, app string, n int64, m *marks) error {
	key := manifest.BuildKey(app, n)
	m.keys[key] = true
	data, _, err := store.ReadSmall(ctx, p.Store, key, manifest.MaxBuildSize)
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, store.ErrTooLarge) {
		return nil
	}
	if err != nil {
		return err
	}
	var env manifest.Envelope
	var b manifest.Build
	if json.Unmarshal(data, &env) != nil || json.Unmarshal(env.Payload, &b) != nil {
		m.warnings = append(m.warnings, "build record "+p.Store.Location(key)+" is unreadable; it is kept")
		return nil
	}
	return p.markRef(ctx, app, b.BuildRef, m)
}

// markRef marks a build's record, bundle, file manifest and files.
func (p *Publisher) markRef(ctx context.Context, app string, ref manifest.BuildRef, m *marks) error {
	if ref.Number > 0 {
		m.keys[manifest.BuildKey(app, ref.Number)] = true
	}
	m.keys[ref.Bundle] = true
	if ref.FilesSHA256 == "" {
		return nil
	}
	key := manifest.FileManifestKey(app, ref.FilesSHA256)
	if m.keys[key] {
		return nil // marked already, with its files
	}
	m.keys[key] = true
	data, _, err := store.ReadSmall(ctx, p.Store, key, manifest.MaxFileManifestSize)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil && !errors.Is(err, store.ErrTooLarge) {
		return err
	}
	if err == nil {
		data, err = manifest.DecodeStoredFileManifest(data, manifest.MaxFileManifestSize)
	}
	var fm manifest.FileManifest
	if err != nil || json.Unmarshal(data, &fm) != nil {
		m.allFiles = true
		m.warnings = append(m.warnings, "file manifest "+p.Store.Location(key)+" is unreadable, so no file object was removed")
		return nil
	}
	for _, f := range fm.Files {
		m.keys[manifest.FileKey(app, f.SHA256, "")] = true
		m.keys[manifest.FileKey(app, f.SHA256, manifest.EncodingBrotli)] = true
	}
	return nil
}

// markPatches marks each file manifest patch among keys that makes a file
// manifest marked already: a patch goes with the manifest it makes.
func (m *marks) markPatches(app string, keys map[string]store.Info) {
	for key := range keys {
		if _, to, ok := manifest.ParseFilesPatchKey(app, key); ok && m.keys[manifest.FileManifestKey(app, to)] {
			m.keys[key] = true
		}
	}
}
