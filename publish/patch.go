package publish

import (
	"bytes"
	"context"
	"errors"
	"io/fs"

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
// manifest.
func (p *Publisher) putPatches(ctx context.Context, acl *manifest.ACL, app, channel string, ptr *manifest.Latest, files *Files, l *lease) (int64, error) {
	if ptr == nil {
		return 0, nil
	}
	done := map[string]bool{files.SHA256: true, "": true}
	var wrote int64
	for seq, entry := ptr.Sequence, ptr; seq > max(0, ptr.Sequence-2*maxPatches) && len(done) < maxPatches+2; seq-- {
		if seq < ptr.Sequence {
			data, _, err := store.ReadSmall(ctx, p.Store, manifest.HistoryKey(app, channel, seq), manifest.MaxLatestSize)
			if err != nil && !errors.Is(err, fs.ErrNotExist) && !errors.Is(err, store.ErrTooLarge) {
				return wrote, err
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
			if done[ref.FilesSHA256] || len(done) >= maxPatches+2 {
				continue
			}
			done[ref.FilesSHA256] = true
			n, err := p.putPatch(ctx, app, ref, files, l)
			if err != nil {
				return wrote, err
			}
			wrote += n
		}
	}
	return wrote, nil
}

// putPatch writes the patch from ref's file manifest to files', and
// returns the bytes written.
func (p *Publisher) putPatch(ctx context.Context, app string, ref manifest.BuildRef, files *Files, l *lease) (int64, error) {
	base, _, err := store.ReadSmall(ctx, p.Store, manifest.FileManifestKey(app, ref.FilesSHA256), manifest.MaxFileManifestSize)
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, store.ErrTooLarge) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	if _, err := manifest.CheckFileManifest(ref, app, base); err != nil {
		return 0, nil
	}
	patch, err := manifest.MakeFilesPatch(app, base, files.data)
	if err != nil {
		return 0, err
	}
	key := manifest.FilesPatchKey(app, ref.FilesSHA256, files.SHA256)
	if err := l.add(ctx, app, key); err != nil {
		return 0, err
	}
	return putImmutable(ctx, p.Store, key, bytes.NewReader(patch), int64(len(patch)), "application/json", false)
}

// patchTo writes the patches to the file manifest of ref, a build the
// channel is about to serve, from those its pointer cur and history name
// (see putPatches). A manifest that is gone or does not match ref gets
// none.
func (p *Publisher) patchTo(ctx context.Context, acl *manifest.ACL, app, channel string, cur *manifest.Latest, ref manifest.BuildRef, l *lease) error {
	if cur == nil || ref.FilesSHA256 == "" {
		return nil
	}
	data, _, err := store.ReadSmall(ctx, p.Store, manifest.FileManifestKey(app, ref.FilesSHA256), manifest.MaxFileManifestSize)
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, store.ErrTooLarge) {
		return nil
	}
	if err != nil {
		return err
	}
	if _, err := manifest.CheckFileManifest(ref, app, data); err != nil {
		return nil
	}
	_, err = p.putPatches(ctx, acl, app, channel, cur, &Files{SHA256: ref.FilesSHA256, Size: ref.FilesSize, data: data}, l)
	return err
}
