package manifest_test

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cartona/deploy/manifest"
)

var update = flag.Bool("update", false, "rewrite testdata/vectors.json")

const vectorsFile = "../testdata/vectors.json"

// Vector is one case of the attack table shared with the TypeScript client.
type Vector struct {
	Name        string   `json:"name"`
	Description string   `json:"description"`
	RootKeys    []string `json:"root_keys"`
	Threshold   int      `json:"threshold"`
	ACL         string   `json:"acl"`    // acl.json bytes
	Latest      string   `json:"latest"` // latest.json bytes
	Expect      struct {
		App           string `json:"app"`
		Channel       string `json:"channel"`
		MinACLVersion int64  `json:"min_acl_version"`
		MinSequence   int64  `json:"min_sequence"`
		Now           string `json:"now"`
	} `json:"expect"`
	Bundle  string `json:"bundle,omitempty"` // base64 bundle bytes to check, if any
	Verdict string `json:"verdict"`          // "ok" or a manifest.Rule
}

func seedKey(b byte) ed25519.PrivateKey {
	return ed25519.NewKeyFromSeed(bytes.Repeat([]byte{b}, ed25519.SeedSize))
}

func makeVectors(t *testing.T) []Vector {
	root, root2, alice, bob, mallory := seedKey(1), seedKey(2), seedKey(3), seedKey(4), seedKey(5)
	pub := func(k ed25519.PrivateKey) string { return manifest.FormatPublicKey(manifest.Public(k)) }
	t0 := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	bundle := []byte("PK\x03\x04 not really a zip, but bytes to hash")
	sum := sha256.Sum256(bundle)
	sha := hex.EncodeToString(sum[:])

	aclPayload := func(version int64) manifest.ACL {
		return manifest.ACL{Version: version, Issued: t0, Users: []manifest.User{
			{Name: "alice", Keys: []string{pub(alice)}, Grants: map[string]manifest.Grant{"retailer": {CanUpload: true}}},
			{Name: "bob", Keys: []string{pub(bob)}, Grants: map[string]manifest.Grant{"other": {CanUpload: true}, "retailer": {CanUpload: false}}},
		}}
	}
	latestPayload := func(seq int64) manifest.Latest {
		return manifest.Latest{App: "retailer", Channel: "production", Sequence: seq, Issued: t0, Expires: t0.Add(90 * 24 * time.Hour),
			Build: manifest.BuildRef{ID: "retailer-7", Number: 7, Version: "1.4.2", Bundle: manifest.BundleKey("retailer", sha), SHA256: sha, Size: int64(len(bundle)), MinNative: "1.0.0"}}
	}
	sign := func(typ string, v any, keys ...ed25519.PrivateKey) string {
		env, err := manifest.Sign(typ, v, keys...)
		if err != nil {
			t.Fatal(err)
		}
		return string(env.Marshal())
	}
	goodACL := sign(manifest.TypeACL, aclPayload(2), root)
	goodLatest := sign(manifest.TypeLatest, latestPayload(5), alice)

	base := func(name, desc, verdict string) Vector {
		v := Vector{Name: name, Description: desc, RootKeys: []string{pub(root)}, Threshold: 1, ACL: goodACL, Latest: goodLatest, Verdict: verdict}
		v.Expect.App, v.Expect.Channel, v.Expect.MinACLVersion, v.Expect.MinSequence = "retailer", "production", 1, 4
		v.Expect.Now = t0.Add(time.Hour).Format(time.RFC3339)
		return v
	}
	var vs []Vector
	add := func(v Vector, edit func(*Vector)) {
		if edit != nil {
			edit(&v)
		}
		vs = append(vs, v)
	}

	add(base("valid", "a latest.json signed by a granted user, with matching bundle bytes", "ok"), func(v *Vector) {
		v.Bundle = base64.StdEncoding.EncodeToString(bundle)
	})
	add(base("valid_same_sequence", "the sequence seen before, fetched again", "ok"), func(v *Vector) { v.Expect.MinSequence = 5 })
	add(base("unsigned", "latest.json with no signatures", "unsigned"), func(v *Vector) {
		var env manifest.Envelope
		json.Unmarshal([]byte(v.Latest), &env)
		env.Signatures = nil
		v.Latest = string(env.Marshal())
	})
	add(base("bad_signature", "payload changed after signing (sequence raised), signature kept", "bad_signature"), func(v *Vector) {
		var env manifest.Envelope
		json.Unmarshal([]byte(v.Latest), &env)
		env.Payload = bytes.Replace(env.Payload, []byte(`"sequence":5`), []byte(`"sequence":9`), 1)
		v.Latest = string(env.Marshal())
	})
	add(base("unknown_key", "signed by a key that is not in the ACL", "untrusted_key"), func(v *Vector) {
		v.Latest = sign(manifest.TypeLatest, latestPayload(5), mallory)
	})
	add(base("other_app_grant", "signed by a user granted only for another app", "not_granted"), func(v *Vector) {
		v.Latest = sign(manifest.TypeLatest, latestPayload(5), bob)
	})
	add(base("app_mismatch", "a valid manifest for another app than the one asked", "app_mismatch"), func(v *Vector) { v.Expect.App = "shop" })
	add(base("channel_mismatch", "a valid manifest for another channel than the one asked", "channel_mismatch"), func(v *Vector) { v.Expect.Channel = "beta" })
	add(base("rollback", "a sequence lower than the last seen (replay of an older latest.json)", "rollback"), func(v *Vector) { v.Expect.MinSequence = 6 })
	add(base("expired", "now is past expires", "expired"), func(v *Vector) {
		v.Expect.Now = t0.Add(91 * 24 * time.Hour).Format(time.RFC3339)
	})
	add(base("acl_not_root", "ACL signed by a user key, not the root key", "acl_untrusted"), func(v *Vector) {
		v.ACL = sign(manifest.TypeACL, aclPayload(2), alice)
	})
	add(base("acl_rollback", "ACL older than the last seen", "acl_rollback"), func(v *Vector) { v.Expect.MinACLVersion = 3 })
	add(base("acl_duplicate_signatures", "threshold 2 of 2 roots; the ACL carries two signatures from one root key", "acl_untrusted"), func(v *Vector) {
		v.RootKeys, v.Threshold = []string{pub(root), pub(root2)}, 2
		v.ACL = sign(manifest.TypeACL, aclPayload(2), root, root)
	})
	add(base("acl_threshold_met", "threshold 2 of 2 roots, both signed", "ok"), func(v *Vector) {
		v.RootKeys, v.Threshold = []string{pub(root), pub(root2)}, 2
		v.ACL = sign(manifest.TypeACL, aclPayload(2), root, root2)
	})
	add(base("too_large", "latest.json over the 64 KiB limit", "too_large"), func(v *Vector) {
		p := map[string]any{"app": "retailer", "padding": strings.Repeat("x", 70<<10)}
		v.Latest = sign(manifest.TypeLatest, p, alice)
	})
	add(base("bundle_mismatch", "a valid manifest, but the downloaded bytes differ", "bundle_mismatch"), func(v *Vector) {
		v.Bundle = base64.StdEncoding.EncodeToString(append([]byte("tampered "), bundle...))
	})
	add(base("malformed", "latest.json is not JSON", "malformed"), func(v *Vector) { v.Latest = "<html>not found</html>" })
	add(base("wrong_payload_type", "an ACL envelope served as latest.json", "malformed"), func(v *Vector) { v.Latest = v.ACL })
	add(base("bundle_outside_app", "a granted signer points the bundle outside the app's content-addressed path", "malformed"), func(v *Vector) {
		l := latestPayload(5)
		l.Build.Bundle = "apps/other/bundles/" + sha + ".zip"
		v.Latest = sign(manifest.TypeLatest, l, alice)
	})
	add(base("revoked", "the signer's can_upload was set to 0", "not_granted"), func(v *Vector) {
		a := aclPayload(3)
		a.Users[0].Grants["retailer"] = manifest.Grant{CanUpload: false}
		v.ACL = sign(manifest.TypeACL, a, root)
	})
	add(base("wildcard_grant", "a grant for every app (\"*\")", "ok"), func(v *Vector) {
		a := aclPayload(3)
		a.Users[0].Grants = map[string]manifest.Grant{manifest.AllApps: {CanUpload: true}}
		v.ACL = sign(manifest.TypeACL, a, root)
	})
	return vs
}

func TestVectorsUpToDate(t *testing.T) {
	got, err := json.MarshalIndent(makeVectors(t), "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	got = append(got, '\n')
	if *update {
		if err := os.WriteFile(vectorsFile, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(vectorsFile)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s is stale; run go test ./manifest -run Vectors -update", filepath.Base(vectorsFile))
	}
}

func TestVectors(t *testing.T) {
	data, err := os.ReadFile(vectorsFile)
	if err != nil {
		t.Fatal(err)
	}
	var vs []Vector
	if err := json.Unmarshal(data, &vs); err != nil {
		t.Fatal(err)
	}
	if len(vs) < 15 {
		t.Fatalf("only %d vectors", len(vs))
	}
	for _, v := range vs {
		t.Run(v.Name, func(t *testing.T) {
			roots, err := manifest.ParsePublicKeys(strings.Join(v.RootKeys, ","))
			if err != nil {
				t.Fatal(err)
			}
			now, err := time.Parse(time.RFC3339, v.Expect.Now)
			if err != nil {
				t.Fatal(err)
			}
			trust := manifest.Trust{Roots: roots, Threshold: v.Threshold}
			l, _, err := trust.VerifyLatest([]byte(v.ACL), []byte(v.Latest), manifest.Expect{
				App: v.Expect.App, Channel: v.Expect.Channel, MinACLVersion: v.Expect.MinACLVersion, MinSequence: v.Expect.MinSequence, Now: now})
			if err == nil && v.Bundle != "" {
				b, _ := base64.StdEncoding.DecodeString(v.Bundle)
				err = manifest.VerifyBundle(l.Build, bytes.NewReader(b))
			}
			got := "ok"
			if err != nil {
				got = string(manifest.RuleOf(err))
				if got == "" {
					t.Fatalf("untyped error: %v", err)
				}
			}
			if got != v.Verdict {
				t.Fatalf("verdict %q (%v), want %q", got, err, v.Verdict)
			}
		})
	}
}
