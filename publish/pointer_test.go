package publish_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"io"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cartona/deploy/manifest"
	"github.com/cartona/deploy/publish"
	"github.com/cartona/deploy/store"
)

// get reads a whole object.
func (f *fixture) get(t *testing.T, key string) []byte {
	t.Helper()
	rc, _, err := f.store.Get(context.Background(), key)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	data, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// fileManifest returns the bytes of the stored file manifest whose SHA-256
// is sha, decoded from its stored form.
func (f *fixture) fileManifest(t *testing.T, app, sha string) []byte {
	t.Helper()
	data, err := manifest.DecodeStoredFileManifest(f.get(t, manifest.FileManifestKey(app, sha)), manifest.MaxFileManifestSize)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// keys lists every key of the store but the ACL.
func (f *fixture) keys(t *testing.T) []string {
	t.Helper()
	infos, err := f.store.List(context.Background(), "apps/")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, in := range infos {
		out = append(out, in.Key)
	}
	return out
}

// setSequence signs the channel's latest.json again with the user key and
// the given sequence, around the publisher.
func (f *fixture) setSequence(t *testing.T, app, channel string, seq int64) {
	t.Helper()
	env, err := manifest.ParseEnvelope(f.get(t, manifest.LatestKey(app, channel)), manifest.TypeLatest, manifest.MaxLatestSize)
	if err != nil {
		t.Fatal(err)
	}
	var l manifest.Latest
	if err := json.Unmarshal(env.Payload, &l); err != nil {
		t.Fatal(err)
	}
	l.Sequence = seq
	payload, err := json.Marshal(l) // around Sign, which refuses what verifiers refuse
	if err != nil {
		t.Fatal(err)
	}
	signed := manifest.SignPayload(manifest.TypeLatest, payload, f.user)
	if _, err := f.store.Put(context.Background(), manifest.LatestKey(app, channel), bytes.NewReader(signed.Marshal()), store.PutOptions{}); err != nil {
		t.Fatal(err)
	}
}

func TestUploadWritesEachPointerToHistory(t *testing.T) {
	eachStore(t, func(t *testing.T, newStore func(t *testing.T) store.Store) {
		f := newFixture(t, newStore(t))
		for i, page := range []string{"a", "b", "c"} {
			res, err := f.publisher().Upload(context.Background(), publish.Request{App: "retailer", Dir: writeTree(t, map[string]string{"index.html": page})})
			if err != nil {
				t.Fatal(err)
			}
			latest := f.get(t, manifest.LatestKey("retailer", "production"))
			if history := f.get(t, manifest.HistoryKey("retailer", "production", res.Sequence)); !bytes.Equal(history, latest) || res.Sequence != int64(i+1) {
				t.Fatalf("upload %d: history/%d.json differs from latest.json", i+1, res.Sequence)
			}
		}
		// An unchanged upload writes no history.
		if _, err := f.publisher().Upload(context.Background(), publish.Request{App: "retailer", Dir: writeTree(t, map[string]string{"index.html": "c"})}); err != nil {
			t.Fatal(err)
		}
		f.verifyHistory(t, "production", 3)
	})
}

func TestUploadPassesOverAnOrphanHistoryEntry(t *testing.T) {
	f := newFixture(t, fileStore(t))
	ctx := context.Background()
	if _, err := f.publisher().Upload(ctx, publish.Request{App: "retailer", Dir: writeTree(t, map[string]string{"index.html": "a"})}); err != nil {
		t.Fatal(err)
	}
	// A writer died between its history write and its swap of latest.json.
	orphan := manifest.HistoryKey("retailer", "production", 2)
	if _, err := f.store.Put(ctx, orphan, strings.NewReader("orphan"), store.PutOptions{CreateOnly: true}); err != nil {
		t.Fatal(err)
	}
	res, err := f.publisher().Upload(ctx, publish.Request{App: "retailer", Dir: writeTree(t, map[string]string{"index.html": "b"})})
	if err != nil {
		t.Fatal(err)
	}
	if l := f.verifyChannel(t, "retailer", "production"); res.Sequence != 3 || l.Sequence != 3 || l.Build.Number != 2 {
		t.Fatalf("after an orphan at sequence 2: result sequence %d, latest %+v; want sequence 3, build 2", res.Sequence, l)
	}
	if got := string(f.get(t, orphan)); got != "orphan" {
		t.Fatalf("the orphan history entry was overwritten with %q", got)
	}
}

func TestUploadRefusesToWrapTheSequence(t *testing.T) {
	for _, seq := range []int64{1<<63 - 1, manifest.MaxSequence, -1 << 63} {
		f := newFixture(t, fileStore(t))
		ctx := context.Background()
		if _, err := f.publisher().Upload(ctx, publish.Request{App: "retailer", Dir: writeTree(t, map[string]string{"index.html": "a"})}); err != nil {
			t.Fatal(err)
		}
		f.setSequence(t, "retailer", "production", seq)
		before, latest := f.keys(t), f.get(t, manifest.LatestKey("retailer", "production"))
		_, err := f.publisher().Upload(ctx, publish.Request{App: "retailer", Dir: writeTree(t, map[string]string{"index.html": "b"})})
		var se *publish.SequenceError
		if !errors.As(err, &se) || !strings.Contains(err.Error(), "publish to a new channel") {
			t.Fatalf("upload after sequence %d: err = %v, want a SequenceError saying how to recover", seq, err)
		}
		if after := f.keys(t); strings.Join(after, " ") != strings.Join(before, " ") || !bytes.Equal(latest, f.get(t, manifest.LatestKey("retailer", "production"))) {
			t.Fatalf("a refused upload wrote: %v -> %v", before, after)
		}
	}
	// One below the cap still publishes, at the cap.
	f := newFixture(t, fileStore(t))
	if _, err := f.publisher().Upload(context.Background(), publish.Request{App: "retailer", Dir: writeTree(t, map[string]string{"index.html": "a"})}); err != nil {
		t.Fatal(err)
	}
	f.setSequence(t, "retailer", "production", manifest.MaxSequence-1)
	if _, err := f.publisher().Upload(context.Background(), publish.Request{App: "retailer", Dir: writeTree(t, map[string]string{"index.html": "b"})}); err != nil {
		t.Fatal(err)
	}
	if l := f.verifyChannel(t, "retailer", "production"); l.Sequence != manifest.MaxSequence {
		t.Fatalf("sequence %d, want %d", l.Sequence, int64(manifest.MaxSequence))
	}
}

func TestUpdateACLRefusesToWrapTheVersion(t *testing.T) {
	for _, c := range []struct {
		version int64
		want    string
	}{
		{manifest.MaxSequence, "is at version 9007199254740991, the most the format allows"},
		// The format refuses it: no verifier took it, restoring loses nothing.
		{1<<63 - 1, "above 9007199254740991, the most the format allows: every verifier refuses it"},
	} {
		f := newFixture(t, fileStore(t))
		ctx := context.Background()
		acl, _, err := publish.ReadACL(ctx, f.store, f.trust)
		if err != nil {
			t.Fatal(err)
		}
		acl.Version = c.version
		payload, err := json.Marshal(acl)
		if err != nil {
			t.Fatal(err)
		}
		env := manifest.SignPayload(manifest.TypeACL, payload, f.root)
		if _, err := f.store.Put(ctx, manifest.ACLKey, bytes.NewReader(env.Marshal()), store.PutOptions{}); err != nil {
			t.Fatal(err)
		}
		_, _, err = publish.UpdateACL(ctx, f.store, f.root, func(a *manifest.ACL) (bool, error) {
			a.Users = append(a.Users, manifest.User{Name: "bea"})
			return true, nil
		})
		var verr *publish.ACLVersionError
		if !errors.As(err, &verr) || !strings.Contains(err.Error(), c.want) {
			t.Fatalf("version %d: err = %v, want an ACLVersionError saying %q", c.version, err, c.want)
		}
		for _, how := range []string{"restore the last acl.json you trust", "`deploy acl resign new_root_key_file="} {
			if !strings.Contains(err.Error(), how) {
				t.Fatalf("version %d: err = %v, want the way to recover: %q", c.version, err, how)
			}
		}
		if got := f.get(t, manifest.ACLKey); !bytes.Equal(got, env.Marshal()) {
			t.Fatalf("version %d: a refused ACL change was written", c.version)
		}
	}
}

func TestUploadRefusesOversizedFieldsAndWritesNothing(t *testing.T) {
	f := newFixture(t, fileStore(t))
	www := writeTree(t, map[string]string{"index.html": "x"})
	for _, c := range []struct {
		name string
		req  publish.Request
		want string
	}{
		{"version", publish.Request{Version: strings.Repeat("9", 70000)}, "version is 70000 bytes long"},
		{"notes", publish.Request{Notes: strings.Repeat("n", 50000)}, "notes is 50000 bytes long"},
		{"min_native", publish.Request{MinNative: strings.Repeat("1", 100)}, "min_native is 100 bytes long"},
		{"git commit", publish.Request{GitCommit: strings.Repeat("a", 200)}, "git commit is 200 bytes long"},
		{"version newline", publish.Request{Version: "1.0\n2"}, "version contains the control character"},
		// Within each field's limit, but JSON escapes each '<' as six bytes.
		{"escaped notes", publish.Request{Notes: strings.Repeat("<", publish.MaxNotesLen)}, "which JSON escapes to 98304"},
	} {
		req := c.req
		req.App, req.Dir, req.Expires = "retailer", www, time.Hour
		_, err := f.publisher().Upload(context.Background(), req)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Fatalf("%s: err = %v, want %q", c.name, err, c.want)
		}
		if keys := f.keys(t); len(keys) != 0 {
			t.Fatalf("%s: a refused upload wrote %v", c.name, keys)
		}
	}
}

func TestUpdateACLRefusesAnOversizedACL(t *testing.T) {
	f := newFixture(t, fileStore(t))
	ctx := context.Background()
	before := f.get(t, manifest.ACLKey)
	_, _, err := publish.UpdateACL(ctx, f.store, f.root, func(a *manifest.ACL) (bool, error) {
		keys := make([]string, 20000)
		for i := range keys {
			keys[i] = manifest.FormatPublicKey(manifest.Public(f.user))
		}
		a.Users = append(a.Users, manifest.User{Name: "bea", Keys: keys})
		return true, nil
	})
	if err == nil || !strings.Contains(err.Error(), "over the 1048576 bytes that verifiers accept") {
		t.Fatalf("err = %v, want the ACL refused as too large", err)
	}
	if !bytes.Equal(before, f.get(t, manifest.ACLKey)) {
		t.Fatal("an oversized ACL was written")
	}
}

func TestResignACLMovesTheACLToANewRoot(t *testing.T) {
	f := newFixture(t, fileStore(t))
	ctx := context.Background()
	newRoot, err := manifest.GenerateKey(filepath.Join(t.TempDir(), "new-root.key"))
	if err != nil {
		t.Fatal(err)
	}
	oldOnly, newOnly := f.trust, manifest.Trust{Roots: []ed25519.PublicKey{manifest.Public(newRoot)}}

	// An ACL that the given trust does not verify is refused, and kept.
	before := f.get(t, manifest.ACLKey)
	if _, err := publish.ResignACL(ctx, f.store, newOnly, []ed25519.PrivateKey{newRoot}); err == nil || !strings.Contains(err.Error(), "does not verify") {
		t.Fatalf("resign verified against the wrong root: err = %v", err)
	}
	if !bytes.Equal(before, f.get(t, manifest.ACLKey)) {
		t.Fatal("a refused resign wrote the ACL")
	}

	// Signed by both roots: verifiers pinning either one trust it.
	acl, err := publish.ResignACL(ctx, f.store, oldOnly, []ed25519.PrivateKey{newRoot, f.root})
	if err != nil {
		t.Fatal(err)
	}
	if acl.Version != 2 || len(acl.Users) != 1 {
		t.Fatalf("resigned ACL version %d with %d users, want version 2 with the 1 user", acl.Version, len(acl.Users))
	}
	for _, tr := range []manifest.Trust{oldOnly, newOnly} {
		if _, _, err := publish.ReadACL(ctx, f.store, tr); err != nil {
			t.Fatalf("ACL signed by both roots: %v", err)
		}
	}

	// Signed by the new root only: the old root is no longer trusted.
	if acl, err = publish.ResignACL(ctx, f.store, newOnly, []ed25519.PrivateKey{newRoot}); err != nil || acl.Version != 3 {
		t.Fatalf("resign with the new root: version %v, err %v", acl, err)
	}
	if _, _, err := publish.ReadACL(ctx, f.store, oldOnly); manifest.RuleOf(err) != manifest.RuleACLUntrusted {
		t.Fatalf("old root only: err = %v, want %s", err, manifest.RuleACLUntrusted)
	}
	both := manifest.Trust{Roots: append(oldOnly.Roots, newOnly.Roots...)}
	if got, _, err := publish.ReadACL(ctx, f.store, both); err != nil || got.Version != 3 {
		t.Fatalf("both roots pinned: %v, %v", got, err)
	}
}
