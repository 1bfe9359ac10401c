package manifest

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
)

// FilesPatch turns one file manifest (the base) into another, so that a
// device holding the file manifest of the build it runs fetches a few
// hundred bytes instead of the whole manifest of the next build. It is
// stored unsigned at [FilesPatchKey]; what applying it makes is checked
// with [CheckFileManifest] against the signed digest, so a wrong patch can
// only fail, never change what a device installs.
type FilesPatch struct {
	App  string    `json:"app"`
	From string    `json:"from"` // SHA-256 of the base's bytes
	To   string    `json:"to"`   // SHA-256 of the manifest it makes
	Ops  []PatchOp `json:"ops"`
}

// PatchOp appends Data (its UTF-8 bytes), then Length bytes of the base
// from Offset.
type PatchOp struct {
	Data   string `json:"data"`
	Offset int64  `json:"offset"`
	Length int64  `json:"length"`
}

// entryStart is where a manifest splits into the pieces a patch copies:
// before each file entry. A name's quotes are escaped, so it never holds
// these bytes; the split only decides what is copied, not what is right.
var entryStart = []byte(`{"name":`)

// MakeFilesPatch returns the bytes of the patch from base to target, two
// file manifests of app: each piece of target (see entryStart) that base
// holds is copied from it, the rest is written out. The patch is checked
// by applying it.
func MakeFilesPatch(app string, base, target []byte) ([]byte, error) {
	at := map[string]int64{}
	for off, piece := range pieces(base) {
		if _, ok := at[string(piece)]; !ok {
			at[string(piece)] = off
		}
	}
	fromSum, toSum := sha256.Sum256(base), sha256.Sum256(target)
	p := FilesPatch{App: app, From: hex.EncodeToString(fromSum[:]), To: hex.EncodeToString(toSum[:])}
	var data []byte
	for _, piece := range pieces(target) {
		off, ok := at[string(piece)]
		if !ok {
			data = append(data, piece...)
			continue
		}
		n := int64(len(piece))
		if last := len(p.Ops) - 1; data == nil && last >= 0 && p.Ops[last].Offset+p.Ops[last].Length == off {
			p.Ops[last].Length += n
			continue
		}
		p.Ops = append(p.Ops, PatchOp{Data: string(data), Offset: off, Length: n})
		data = nil
	}
	if data != nil || p.Ops == nil {
		p.Ops = append(p.Ops, PatchOp{Data: string(data)})
	}
	out, err := json.Marshal(p)
	if err != nil {
		return nil, err
	}
	got, err := applyFilesPatch(base, out, app, p.To, int64(len(target)))
	if err != nil || !bytes.Equal(got, target) {
		return nil, fmt.Errorf("the patch from file manifest %s to %s would not apply (%v); nothing was written", p.From, p.To, err)
	}
	return out, nil
}

// PatchPays reports whether a patch is worth storing and fetching instead
// of the file manifest of targetSize bytes it makes: at most half its
// size, or any patch to a manifest under 16 KiB, where either costs a
// device little. A large build that changes most of its files gets none.
func PatchPays(patch []byte, targetSize int64) bool {
	return int64(len(patch)) <= targetSize/2 || targetSize < 16<<10
}

// pieces yields data split before each entryStart, with the offset of each
// piece.
func pieces(data []byte) func(yield func(int64, []byte) bool) {
	return func(yield func(int64, []byte) bool) {
		start := 0
		for start < len(data) {
			end := len(data)
			if i := bytes.Index(data[start+1:], entryStart); i >= 0 {
				end = start + 1 + i
			}
			if !yield(int64(start), data[start:end]) {
				return
			}
			start = end
		}
	}
}

// ApplyFilesPatch applies a downloaded patch to base, the bytes of a file
// manifest the device checked before, and checks what it makes as
// [CheckFileManifest] checks the manifest of the verified build reference
// ref. A patch that is not valid JSON of a FilesPatch, names another app,
// or copies from outside base is malformed; one whose from or to is not
// base's or ref's digest, or that makes other bytes, is files_mismatch.
func ApplyFilesPatch(ref BuildRef, app string, base, patch []byte) (*FileManifest, []byte, error) {
	if ref.FilesSHA256 == "" {
		return nil, nil, &Error{RuleFilesMismatch, fmt.Sprintf("build %s has no file manifest", ref.ID)}
	}
	data, err := applyFilesPatch(base, patch, app, ref.FilesSHA256, ref.FilesSize)
	if err != nil {
		return nil, nil, err
	}
	m, err := CheckFileManifest(ref, app, data)
	return m, data, err
}

func applyFilesPatch(base, patch []byte, app, to string, size int64) ([]byte, error) {
	if len(patch) > MaxFileManifestSize {
		return nil, &Error{RuleMalformed, fmt.Sprintf("file manifest patch: %d bytes, over %d", len(patch), MaxFileManifestSize)}
	}
	var p FilesPatch
	if err := decodeStrict(patch, &p); err != nil {
		return nil, &Error{RuleMalformed, "file manifest patch: " + err.Error()}
	}
	if p.App != app {
		return nil, &Error{RuleMalformed, fmt.Sprintf("file manifest patch: for app %q, want %q", p.App, app)}
	}
	sum := sha256.Sum256(base)
	if from := hex.EncodeToString(sum[:]); p.From != from || p.To != to {
		return nil, &Error{RuleFilesMismatch, fmt.Sprintf("file manifest patch from %s to %s, want from %s to %s", p.From, p.To, from, to)}
	}
	out := make([]byte, 0, min(size, MaxFileManifestSize))
	for i, op := range p.Ops {
		if op.Offset > int64(len(base)) || op.Length > int64(len(base))-op.Offset {
			return nil, &Error{RuleMalformed, fmt.Sprintf("file manifest patch: op %d copies %d bytes at %d of a %d-byte base", i, op.Length, op.Offset, len(base))}
		}
		if int64(len(out))+int64(len(op.Data))+op.Length > size {
			return nil, &Error{RuleFilesMismatch, fmt.Sprintf("file manifest patch makes more than the %d bytes of the build's file manifest", size)}
		}
		out = append(out, op.Data...)
		out = append(out, base[op.Offset:op.Offset+op.Length]...)
	}
	return out, nil
}
