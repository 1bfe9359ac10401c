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
// names, that a history entry within OlderThan names, the newest Keep,
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

// markPointers marks the builds of every channel's latest.json and, when
// recent is set, of its history entries for which recent is true.
func (p *Publisher) markPointers(ctx context.Context, app string, m *marks, recent func(store.Info) bool) error {
	infos, err := p.Store.List(ctx, manifest.ChannelsPrefix(app))
	if err != nil {
		return err
	}
	for _, in := range infos {
		if _, _, ok := manifest.ParseLatestKey(in.Key); !ok && (recent == nil || !isHistoryKey(app, in.Key) || !recent(in)) {
			continue
		}
		data, _, err := store.ReadSmall(ctx, p.Store, in.Key, manifest.MaxLatestSize)
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, store.ErrTooLarge) {
			continue // gone, or refused by every device
		}
		if err != nil {
			return err
		}
		for _, ref := range pointerRefs(data) {
			if err := p.markRef(ctx, app, ref, m); err != nil {
				return err
			}
		}
	}
	return nil
}

// isHistoryKey reports whether key is a history entry of one of app's
// channels.
func isHistoryKey(app, key string) bool {
	channel, _, _ := strings.Cut(strings.TrimPrefix(key, manifest.ChannelsPrefix(app)), "/")
	_, ok := manifest.ParseHistoryKey(app, channel, key)
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
