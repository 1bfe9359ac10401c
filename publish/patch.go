package publish

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"maps"
	"slices"

	"github.com/cartona/deploy/manifest"
	"github.com/cartona/deploy/store"
)

// maxPatches bounds the file manifest patches an upload writes: to the new
// build from the builds a device on the channel most likely runs.
const maxPatches = 8

// putPatches writes the patch to the new build's file manifest
// (docs/format.md, "File manifest patches") from the file manifest of each
// build that the channel's verified pointer ptr names, then of those that
// its history entries before it name, newest first, up to maxPatches, and
// returns the bytes written. A base that is gone, or that does not match
// its signed reference, is skipped: devices on that build fetch the whole
// manifest. The patches are added to the lease l at once, before any is
// written.
func (p *Publisher) putPatches(ctx context.Context, acl *manifest.ACL, app, channel string, ptr *manifest.Latest, files *Files, l *lease) (int64, error) {
	bases, err := p.patchBases(ctx, acl, app, channel, ptr, files.SHA256)
	if err != nil {
		return 0, err
	}
	patches := map[string][]byte{}
	for _, ref := range bases {
		patch, err := p.makePatch(ctx, app, ref, files)
		if err != nil {
			return 0, err
		}
		if patch != nil {
			patches[manifest.FilesPatchKey(app, ref.FilesSHA256, files.SHA256)] = patch
		}
	}
	if len(patches) == 0 {
		return 0, nil
	}
	if err := l.add(ctx, app, slices.Sorted(maps.Keys(patches))...); err != nil {
		return 0, err
	}
	var wrote int64
	for key, patch := range patches {
		n, err := putImmutable(ctx, p.Store, key, bytes.NewReader(patch), int64(len(patch)), store.PutOptions{ContentType: "application/json"}, false)
		if err != nil {
			return wrote, err
		}
		wrote += n
	}
	return wrote, nil
}

// patchBases returns the builds, other than the one whose file manifest
// has SHA-256 target, that the pointer ptr and the 2*maxPatches history
// entries before it name, one per file manifest, newest first, up to
// maxPatches.
func (p *Publisher) patchBases(ctx context.Context, acl *manifest.ACL, app, channel string, ptr *manifest.Latest, target string) ([]manifest.BuildRef, error) {
	if ptr == nil {
		return nil, nil
	}
	seen := map[string]bool{target: true, "": true}
	var bases []manifest.BuildRef
	for seq, entry := ptr.Sequence, ptr; seq > 0 && seq >= ptr.Sequence-2*maxPatches && len(bases) < maxPatches; seq-- {
		if seq < ptr.Sequence {
			data, _, err := store.ReadSmall(ctx, p.Store, manifest.HistoryKey(app, channel, seq), manifest.MaxLatestSize)
			if err != nil && !errors.Is(err, fs.ErrNotExist) && !errors.Is(err, store.ErrTooLarge) {
				return nil, err
			}
			if entry, err = acl.VerifyHistoryEntry(app, channel, seq, data); err != nil {
				continue
			}
		}
		refs := []manifest.BuildRef{entry.Build}
		if entry.Candidate != nil {
			refs = append(refs, entry.Candidate.Build)
		}
		for _, ref := range append(refs, entry.Fallbacks...) {
			if !seen[ref.FilesSHA256] && len(bases) < maxPatches {
				seen[ref.FilesSHA256] = true
				bases = append(bases, ref)
			}
		}
	}
	return bases, nil
}

// makePatch returns the patch from ref's file manifest to files', or nil
// when that manifest is gone or does not match ref, or when the patch
// would not pay (see [manifest.PatchPays]).
func (p *Publisher) makePatch(ctx context.Context, app string, ref manifest.BuildRef, files *Files) ([]byte, error) {
	base, err := p.readFileManifest(ctx, app, ref)
	if base == nil || err != nil {
		return nil, err
	}
	patch, err := manifest.MakeFilesPatch(app, base, files.data)
	if err != nil || !manifest.PatchPays(patch, files.Size) {
		return nil, err
	}
	return patch, nil
}

// readFileManifest returns the bytes of ref's file manifest, or nil when
// it is gone or does not match ref.
func (p *Publisher) readFileManifest(ctx context.Context, app string, ref manifest.BuildRef) ([]byte, error) {
	data, _, err := store.ReadSmall(ctx, p.Store, manifest.FileManifestKey(app, ref.FilesSHA256), manifest.MaxFileManifestSize)
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, store.ErrTooLarge) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	_, data, err = manifest.ReadFileManifest(ref, app, data)
	if err != nil {
		return nil, nil
	}
	return data, nil
}

// patchTo writes the patches to the file manifest of ref, a build the
// channel is about to serve, from those its pointer cur and history name
// (see putPatches). A manifest that is gone or does not match ref gets
// none.
func (p *Publisher) patchTo(ctx context.Context, acl *manifest.ACL, app, channel string, cur *manifest.Latest, ref manifest.BuildRef, l *lease) error {
	if cur == nil || ref.FilesSHA256 == "" {
		return nil
	}
	data, err := p.readFileManifest(ctx, app, ref)
	if data == nil || err != nil {
		return err
	}
	_, err = p.putPatches(ctx, acl, app, channel, cur, &Files{SHA256: ref.FilesSHA256, Size: ref.FilesSize, data: data}, l)
	return err
}
