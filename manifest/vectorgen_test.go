package manifest_test

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/cartona/deploy/manifest"
)

func seedKey(b byte) ed25519.PrivateKey {
	return ed25519.NewKeyFromSeed(bytes.Repeat([]byte{b}, ed25519.SeedSize))
}

func pub(k ed25519.PrivateKey) string { return manifest.FormatPublicKey(manifest.Public(k)) }

// gen holds what the vectors are made of: keys (seeds of 32 equal bytes:
// root 1, root2 2, alice 3, bob 4, mallory 5, tracker 6), a time, a bundle.
type gen struct {
	t                                         *testing.T
	root, root2, alice, bob, mallory, tracker ed25519.PrivateKey
	t0                                        time.Time
	bundle                                    []byte
	sha                                       string
	vs                                        []Vector
	goodACL, goodLatest                       string
}

func newGen(t *testing.T) *gen {
	g := &gen{t: t, root: seedKey(1), root2: seedKey(2), alice: seedKey(3), bob: seedKey(4), mallory: seedKey(5), tracker: seedKey(6)}
	g.t0 = time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	g.bundle = []byte("PK\x03\x04 not really a zip, but bytes to hash")
	sum := sha256.Sum256(g.bundle)
	g.sha = hex.EncodeToString(sum[:])
	g.goodACL = g.sign(manifest.TypeACL, g.aclPayload(2), g.root)
	g.goodLatest = g.sign(manifest.TypeLatest, g.latestPayload(5), g.alice)
	return g
}

func (g *gen) aclPayload(version int64) manifest.ACL {
	return manifest.ACL{Version: version, Issued: g.t0, Users: []manifest.User{
		{Name: "alice", Keys: []string{pub(g.alice)}, Grants: map[string]manifest.Grant{"retailer": {CanUpload: true}}},
		{Name: "bob", Keys: []string{pub(g.bob)}, Grants: map[string]manifest.Grant{"other": {CanUpload: true}, "retailer": {CanUpload: false}}},
		{Name: "tracker", Keys: []string{pub(g.tracker)}, Grants: map[string]manifest.Grant{"retailer": {CanHalt: true}}},
	}}
}

func (g *gen) ref(n int64) manifest.BuildRef {
	return manifest.BuildRef{ID: manifest.BuildID("retailer", n), Number: n, Version: fmt.Sprintf("1.4.%d", n),
		Bundle: manifest.BundleKey("retailer", g.sha), SHA256: g.sha, Size: int64(len(g.bundle)), MinNative: "1.0.0"}
}

func (g *gen) latestPayload(seq int64) manifest.Latest {
	l := manifest.Latest{App: "retailer", Channel: "production", Sequence: seq, Issued: g.t0, Expires: g.t0.Add(90 * 24 * time.Hour), Build: g.ref(7)}
	l.Build.Version = "1.4.2"
	return l
}

func (g *gen) sign(typ string, v any, keys ...ed25519.PrivateKey) string {
	env, err := manifest.Sign(typ, v, keys...)
	if err != nil {
		g.t.Fatal(err)
	}
	return string(env.Marshal())
}

// raw signs payload text as it is.
func (g *gen) raw(typ, payload string, keys ...ed25519.PrivateKey) string {
	return string(manifest.SignPayload(typ, []byte(payload), keys...).Marshal())
}

func (g *gen) base(name, desc, verdict string) Vector {
	v := Vector{Name: name, Description: desc, RootKeys: []string{pub(g.root)}, Threshold: 1, ACL: g.goodACL, Latest: g.goodLatest, Verdict: verdict}
	v.Expect.App, v.Expect.Channel, v.Expect.MinACLVersion, v.Expect.MinSequence = "retailer", "production", 1, 4
	v.Expect.Now = g.t0.Add(time.Hour).Format(time.RFC3339)
	return v
}

func (g *gen) add(v Vector, edit func(*Vector)) {
	if edit != nil {
		edit(&v)
	}
	g.vs = append(g.vs, v)
}

// editEnvelope decodes an envelope's JSON loosely, lets edit change it, and
// writes it back compact.
func editEnvelope(s string, edit func(map[string]any)) string {
	var m map[string]any
	if err := json.Unmarshal([]byte(s), &m); err != nil {
		panic(err)
	}
	edit(m)
	b, _ := json.Marshal(m)
	return string(b)
}

func makeVectors(t *testing.T) []Vector {
	g := newGen(t)
	g.baseVectors()
	g.strictVectors()
	g.aclVectors()
	g.ed25519Vectors()
	g.ed25519StrictVectors()
	g.releaseVectors()
	g.absentValueVectors()
	g.haltVectors()
	g.historyVectors()
	g.filesVectors()
	g.patchVectors()
	g.cohortVectors()
	return g.vs
}

func (g *gen) baseVectors() {
	add, base, sign := g.add, g.base, g.sign
	add(base("valid", "a latest.json signed by a granted user, with matching bundle bytes", "ok"), func(v *Vector) {
		v.Bundle = base64.StdEncoding.EncodeToString(g.bundle)
		v.Result = &VecRes{Sequence: 5, Build: 7}
	})
	add(base("valid_same_sequence", "the sequence seen before, fetched again", "ok"), func(v *Vector) { v.Expect.MinSequence = 5 })
	add(base("unsigned", "latest.json with an empty signatures array", "unsigned"), func(v *Vector) {
		v.Latest = editEnvelope(v.Latest, func(m map[string]any) { m["signatures"] = []any{} })
	})
	add(base("bad_signature", "payload changed after signing (sequence raised), signature kept", "bad_signature"), func(v *Vector) {
		var env manifest.Envelope
		json.Unmarshal([]byte(v.Latest), &env)
		env.Payload = bytes.Replace(env.Payload, []byte(`"sequence":5`), []byte(`"sequence":9`), 1)
		v.Latest = string(env.Marshal())
	})
	add(base("unknown_key", "signed by a key that is not in the ACL", "untrusted_key"), func(v *Vector) {
		v.Latest = sign(manifest.TypeLatest, g.latestPayload(5), g.mallory)
	})
	add(base("other_app_grant", "signed by a user granted only for another app", "not_granted"), func(v *Vector) {
		v.Latest = sign(manifest.TypeLatest, g.latestPayload(5), g.bob)
	})
	add(base("app_mismatch", "a valid manifest for another app than the one asked", "app_mismatch"), func(v *Vector) { v.Expect.App = "shop" })
	add(base("channel_mismatch", "a valid manifest for another channel than the one asked", "channel_mismatch"), func(v *Vector) { v.Expect.Channel = "beta" })
	add(base("rollback", "a sequence lower than the last seen (replay of an older latest.json)", "rollback"), func(v *Vector) { v.Expect.MinSequence = 6 })
	add(base("expired", "now is past expires", "expired"), func(v *Vector) {
		v.Expect.Now = g.t0.Add(91 * 24 * time.Hour).Format(time.RFC3339)
	})
	add(base("acl_not_root", "ACL signed by a user key, not the root key", "acl_untrusted"), func(v *Vector) {
		v.ACL = sign(manifest.TypeACL, g.aclPayload(2), g.alice)
	})
	add(base("acl_rollback", "ACL older than the last seen", "acl_rollback"), func(v *Vector) { v.Expect.MinACLVersion = 3 })
	add(base("acl_duplicate_signatures", "threshold 2 of 2 roots; the ACL carries two signatures from one root key", "acl_untrusted"), func(v *Vector) {
		v.RootKeys, v.Threshold = []string{pub(g.root), pub(g.root2)}, 2
		v.ACL = sign(manifest.TypeACL, g.aclPayload(2), g.root, g.root)
	})
	add(base("acl_threshold_met", "threshold 2 of 2 roots, both signed", "ok"), func(v *Vector) {
		v.RootKeys, v.Threshold = []string{pub(g.root), pub(g.root2)}, 2
		v.ACL = sign(manifest.TypeACL, g.aclPayload(2), g.root, g.root2)
	})
	add(base("root_pinned_twice", "a root key pinned twice counts twice toward the threshold", "ok"), func(v *Vector) {
		v.RootKeys, v.Threshold = []string{pub(g.root), pub(g.root)}, 2
	})
	add(base("too_large", "latest.json over the 64 KiB limit", "too_large"), func(v *Vector) {
		v.Latest = g.raw(manifest.TypeLatest, `{"app":"retailer","padding":"`+strings.Repeat("x", 70<<10)+`"}`, g.alice)
	})
	add(base("bundle_mismatch", "a valid manifest, but the downloaded bytes differ", "bundle_mismatch"), func(v *Vector) {
		v.Bundle = base64.StdEncoding.EncodeToString(append([]byte("tampered "), g.bundle...))
	})
	add(base("malformed", "latest.json is not JSON", "malformed"), func(v *Vector) { v.Latest = "<html>not found</html>" })
	add(base("wrong_payload_type", "an ACL envelope served as latest.json", "malformed"), func(v *Vector) { v.Latest = v.ACL })
	add(base("bundle_outside_app", "a granted signer points the bundle outside the app's content-addressed path", "malformed"), func(v *Vector) {
		l := g.latestPayload(5)
		l.Build.Bundle = "apps/other/bundles/" + g.sha + ".zip"
		v.Latest = sign(manifest.TypeLatest, l, g.alice)
	})
	add(base("revoked", "the signer's can_upload was set to false", "not_granted"), func(v *Vector) {
		a := g.aclPayload(3)
		a.Users[0].Grants["retailer"] = manifest.Grant{CanUpload: false}
		v.ACL = sign(manifest.TypeACL, a, g.root)
	})
	add(base("wildcard_grant", "a grant for every app (\"*\")", "ok"), func(v *Vector) {
		a := g.aclPayload(3)
		a.Users[0].Grants = map[string]manifest.Grant{manifest.AllApps: {CanUpload: true}}
		v.ACL = sign(manifest.TypeACL, a, g.root)
	})
	add(base("wildcard_not_overridden", "can_upload false for the app does not take away a \"*\" grant", "ok"), func(v *Vector) {
		a := g.aclPayload(3)
		a.Users[0].Grants = map[string]manifest.Grant{manifest.AllApps: {CanUpload: true}, "retailer": {CanUpload: false}}
		v.ACL = sign(manifest.TypeACL, a, g.root)
	})
	add(base("signed_by_halt_key", "a pointer signed by a key that may only halt", "not_granted"), func(v *Vector) {
		v.Latest = sign(manifest.TypeLatest, g.latestPayload(5), g.tracker)
	})
	g.orderVectors()
}

// orderVectors pin what decoding checks and the order of the steps after
// it: a name or sha256 field is only a string to decoding.
func (g *gen) orderVectors() {
	signed := func(edit func(*manifest.Latest)) string {
		l := g.latestPayload(5)
		edit(&l)
		return g.sign(manifest.TypeLatest, l, g.alice)
	}
	g.add(g.base("app_not_a_name", "app is not a name: checked as the app asked, not when decoding", "app_mismatch"), func(v *Vector) {
		v.Latest = signed(func(l *manifest.Latest) { l.App = "Retailer" })
	})
	g.add(g.base("by_not_a_name", "by is not a name: no uploader has it", "not_granted"), func(v *Vector) {
		v.Latest = signed(func(l *manifest.Latest) { l.By = "Alice" })
	})
	g.add(g.base("expired_before_layout", "an expired pointer whose build sha256 is upper case: expiry is checked first", "expired"), func(v *Vector) {
		v.Latest = signed(func(l *manifest.Latest) { l.Build.SHA256 = strings.ToUpper(l.Build.SHA256) })
		v.Expect.Now = g.t0.Add(91 * 24 * time.Hour).Format(time.RFC3339)
	})
	files := func(size int64) func(*manifest.Latest) {
		return func(l *manifest.Latest) { l.Build.FilesSHA256, l.Build.FilesSize = strings.Repeat("cd", 32), size }
	}
	g.add(g.base("files_size_at_limit", "a file manifest of 8 MiB", "ok"), func(v *Vector) {
		v.Latest = signed(files(manifest.MaxFileManifestSize))
	})
	g.add(g.base("files_size_over_limit", "a file manifest over the 8 MiB a verifier reads", "malformed"), func(v *Vector) {
		v.Latest = signed(files(manifest.MaxFileManifestSize + 1))
	})
}

// latestText is the payload of the valid vector as text, with fields
// replaced (a value "" leaves the field out).
func (g *gen) latestText(fields ...string) string {
	ref := `{"id":"retailer-7","number":7,"version":"1.4.2","bundle":"apps/retailer/bundles/` + g.sha + `.zip","sha256":"` + g.sha + `","size":40,"min_native":"1.0.0"}`
	f := map[string]string{"app": `"retailer"`, "channel": `"production"`, "sequence": "5", "issued": `"2026-11-01T12:00:00Z"`, "expires": `"2027-01-30T12:00:00Z"`, "build": ref}
	order := []string{"app", "channel", "sequence", "issued", "expires", "build"}
	for i := 0; i+1 < len(fields); i += 2 {
		if _, ok := f[fields[i]]; !ok {
			order = append(order, fields[i])
		}
		f[fields[i]] = fields[i+1]
	}
	var parts []string
	for _, k := range order {
		if f[k] != "" {
			parts = append(parts, fmt.Sprintf("%q:%s", k, f[k]))
		}
	}
	return "{" + strings.Join(parts, ",") + "}"
}

func (g *gen) strictVectors() {
	cases := []struct{ name, verdict, payload string }{
		{"key_other_case", "malformed", strings.Replace(g.latestText(), `"app"`, `"App"`, 1)},
		{"key_long_s", "malformed", strings.Replace(g.latestText(), `"sequence"`, `"\u017fequence"`, 1)},
		{"key_duplicate", "malformed", strings.Replace(g.latestText(), `{"app":"retailer"`, `{"app":"shop","app":"retailer"`, 1)},
		{"key_duplicate_unknown", "malformed", g.latestText("extra", `{"a":1,"a":1}`)},
		{"unknown_fields_ignored", "ok", g.latestText("extra", `{"nested":[1,2.5e3,"x",true,{}]}`)},
		{"unknown_field_other_case_of_nothing", "ok", g.latestText("Extra", `1`)},
		{"unknown_field_other_case_of_nested_field", "ok", g.latestText("SHA256", `1`)},
		{"unknown_field_other_case_in_unknown_object", "ok", g.latestText("extra", `{"App":1}`)},
		{"null_optional_field", "malformed", strings.Replace(g.latestText(), `"1.0.0"`, `null`, 1)},
		{"null_unknown_field", "malformed", g.latestText("extra", `null`)},
		{"null_payload", "malformed", "null"},
		{"array_payload", "malformed", "[]"},
		{"missing_expires", "malformed", g.latestText("expires", "")},
		{"missing_build", "malformed", g.latestText("build", "")},
		{"int_fraction", "malformed", g.latestText("sequence", "5.0")},
		{"int_exponent", "malformed", g.latestText("sequence", "5e0")},
		{"int_string", "malformed", g.latestText("sequence", `"5"`)},
		{"int_negative", "malformed", g.latestText("sequence", "-5")},
		{"int_leading_zero", "malformed", g.latestText("sequence", "05")},
		{"int_max", "ok", g.latestText("sequence", "9007199254740991")},
		{"int_over_max", "malformed", g.latestText("sequence", "9007199254740992")},
		{"int_over_int64", "malformed", g.latestText("sequence", "9223372036854775808")},
		{"build_number_over_max", "malformed", strings.Replace(strings.Replace(g.latestText(), `"number":7`, `"number":9007199254740992`, 1), "retailer-7", "retailer-9007199254740992", 1)},
		{"string_as_number", "malformed", g.latestText("app", "5")},
		{"bool_as_string", "malformed", g.latestText("settings", `{"self_assign":"true"}`)},
		{"bool", "ok", g.latestText("settings", `{"self_assign":true}`)},
		{"time_fraction_9", "ok", g.latestText("expires", `"2027-01-30T12:00:00.123456789Z"`)},
		{"time_fraction_10", "malformed", g.latestText("expires", `"2027-01-30T12:00:00.1234567891Z"`)},
		{"time_offset", "malformed", g.latestText("expires", `"2027-01-30T14:00:00+02:00"`)},
		{"time_zero_offset", "malformed", g.latestText("expires", `"2027-01-30T12:00:00+00:00"`)},
		{"time_lower_z", "malformed", g.latestText("expires", `"2027-01-30T12:00:00z"`)},
		{"time_lower_t", "malformed", g.latestText("expires", `"2027-01-30t12:00:00Z"`)},
		{"time_one_digit_hour", "malformed", g.latestText("expires", `"2027-01-30T1:00:00Z"`)},
		{"time_comma_fraction", "malformed", g.latestText("expires", `"2027-01-30T12:00:00,5Z"`)},
		{"time_empty_fraction", "malformed", g.latestText("expires", `"2027-01-30T12:00:00.Z"`)},
		{"time_30_february", "malformed", g.latestText("expires", `"2027-02-30T12:00:00Z"`)},
		{"time_29_february_leap", "ok", g.latestText("expires", `"2028-02-29T12:00:00Z"`)},
		{"time_29_february", "malformed", g.latestText("expires", `"2027-02-29T12:00:00Z"`)},
		{"time_hour_24", "malformed", g.latestText("expires", `"2027-01-30T24:00:00Z"`)},
		{"time_leap_second", "malformed", g.latestText("expires", `"2026-12-31T23:59:60Z"`)},
		{"time_escaped", "ok", g.latestText("expires", `"2027-01-30T12:00:00\u005a"`)},
		{"time_number", "malformed", g.latestText("expires", `1800000000`)},
		{"data_after_payload", "malformed", g.latestText() + " x"},
		{"brace_after_payload", "malformed", g.latestText() + "}"},
		{"second_value_after_payload", "malformed", g.latestText() + g.latestText()},
		{"whitespace_around_payload", "ok", "\n\t " + g.latestText() + " \r\n"},
		{"byte_order_mark", "malformed", "\ufeff" + g.latestText()},
		{"invalid_utf8", "malformed", g.latestText("notes", "\"\xff\"")},
		{"lone_surrogate", "malformed", g.latestText("notes", `"\ud800"`)},
		{"lone_low_surrogate", "malformed", g.latestText("notes", `"\udc00x"`)},
		{"surrogate_pair", "ok", g.latestText("notes", `"\ud83d\ude00"`)},
		{"control_character", "malformed", g.latestText("notes", "\"a\tb\"")},
		{"nesting_64", "ok", g.latestText("deep", strings.Repeat("[", 63)+strings.Repeat("]", 63))},
		{"nesting_65", "malformed", g.latestText("deep", strings.Repeat("[", 64)+strings.Repeat("]", 64))},
		{"trailing_comma", "malformed", strings.Replace(g.latestText(), `}}`, `},}`, 1)},
	}
	for _, c := range cases {
		g.add(g.base("strict_"+c.name, "payload decoding: "+strings.ReplaceAll(c.name, "_", " "), c.verdict), func(v *Vector) {
			v.Latest = g.raw(manifest.TypeLatest, c.payload, g.alice)
		})
	}
	g.envelopeVectors()
}

func (g *gen) envelopeVectors() {
	sig := func(m map[string]any) map[string]any { return m["signatures"].([]any)[0].(map[string]any) }
	edits := []struct {
		name, verdict string
		edit          func(map[string]any)
	}{
		{"key_other_case", "malformed", func(m map[string]any) { m["PAYLOADTYPE"] = m["payloadType"]; delete(m, "payloadType") }},
		{"unknown_field", "ok", func(m map[string]any) { m["comment"] = "x"; sig(m)["extra"] = 1 }},
		{"base64_unpadded", "malformed", func(m map[string]any) { m["payload"] = strings.TrimRight(m["payload"].(string), "=") }},
		{"base64_line_break", "malformed", func(m map[string]any) { p := m["payload"].(string); m["payload"] = p[:8] + "\r\n" + p[8:] }},
		{"base64_url_alphabet", "malformed", func(m map[string]any) {
			sig(m)["sig"] = "-" + sig(m)["sig"].(string)[1:]
		}},
		{"payload_byte_array", "malformed", func(m map[string]any) {
			b, _ := base64.StdEncoding.DecodeString(m["payload"].(string))
			var a []any
			for _, x := range b {
				a = append(a, int(x))
			}
			m["payload"] = a
		}},
		{"null_signature", "malformed", func(m map[string]any) { m["signatures"] = []any{nil} }},
		{"signatures_null", "malformed", func(m map[string]any) { m["signatures"] = nil }},
		{"signatures_missing", "malformed", func(m map[string]any) { delete(m, "signatures") }},
		{"short_signature", "malformed", func(m map[string]any) { sig(m)["sig"] = sig(m)["sig"].(string)[:40] }},
		{"keyid_upper_case", "malformed", func(m map[string]any) { sig(m)["keyid"] = strings.ToUpper(sig(m)["keyid"].(string)) }},
		{"keyid_missing", "malformed", func(m map[string]any) { delete(sig(m), "keyid") }},
		{"second_signature_unknown_key", "ok", func(m map[string]any) {
			m["signatures"] = append(m["signatures"].([]any), map[string]any{"keyid": strings.Repeat("ab", 32), "sig": base64.StdEncoding.EncodeToString(make([]byte, 64))})
		}},
	}
	for _, e := range edits {
		g.add(g.base("envelope_"+e.name, "envelope decoding: "+strings.ReplaceAll(e.name, "_", " "), e.verdict), func(v *Vector) {
			v.Latest = editEnvelope(v.Latest, e.edit)
		})
	}
	g.add(g.base("envelope_base64_trailing_bits", "payload base64 whose unused bits are not zero", "malformed"), func(v *Vector) {
		payload := g.latestText()
		for len(payload)%3 == 0 { // so that the base64 ends in padding
			payload += " "
		}
		v.Latest = g.raw(manifest.TypeLatest, payload, g.alice)
		v.Latest = editEnvelope(v.Latest, func(m map[string]any) {
			p := m["payload"].(string)
			i := strings.Index(p, "=") - 1
			m["payload"] = p[:i] + string("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"[strings.IndexByte("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/", p[i])|1]) + p[i+1:]
		})
	})
	g.add(g.base("envelope_data_after", "data after the envelope", "malformed"), func(v *Vector) { v.Latest += "}" })
	g.add(g.base("envelope_duplicate_key", "payloadType given twice", "malformed"), func(v *Vector) {
		v.Latest = strings.Replace(v.Latest, `"payloadType": `, `"payloadType": "x", "payloadType": `, 1)
	})
}

func (g *gen) aclVectors() {
	alice := func(keys, grants string) string {
		return `{"name":"alice","keys":` + keys + `,"grants":` + grants + `}`
	}
	aliceKeys, aliceGrants := `["`+pub(g.alice)+`"]`, `{"retailer":{"can_upload":true}}`
	acl := func(users string) string {
		return `{"version":2,"issued":"2026-11-01T12:00:00Z","users":[` + users + `]}`
	}
	cases := []struct{ name, verdict, payload string }{
		{"version_fraction", "malformed", strings.Replace(acl(alice(aliceKeys, aliceGrants)), `"version":2`, `"version":2.0`, 1)},
		{"version_zero", "malformed", strings.Replace(acl(alice(aliceKeys, aliceGrants)), `"version":2`, `"version":0`, 1)},
		{"version_over_max", "malformed", strings.Replace(acl(alice(aliceKeys, aliceGrants)), `"version":2`, `"version":9007199254740992`, 1)},
		{"version_max", "ok", strings.Replace(acl(alice(aliceKeys, aliceGrants)), `"version":2`, `"version":9007199254740991`, 1)},
		{"key_with_newline", "malformed", acl(alice(`["`+pub(g.alice)+`\n"]`, aliceGrants))},
		{"key_not_a_key", "malformed", acl(alice(`["`+pub(g.alice)+`","ed25519:nope"]`, aliceGrants))},
		{"grant_null", "malformed", acl(alice(aliceKeys, `{"retailer":null}`))},
		{"grant_empty", "not_granted", acl(alice(aliceKeys, `{"retailer":{}}`))},
		{"grants_missing", "not_granted", `{"version":2,"issued":"2026-11-01T12:00:00Z","users":[{"name":"alice","keys":` + aliceKeys + `}]}`},
		{"grants_twice", "malformed", acl(`{"name":"alice","keys":` + aliceKeys + `,"grants":{},"grants":` + aliceGrants + `}`)},
		{"grant_key_other_case", "malformed", acl(alice(aliceKeys, `{"retailer":{"Can_Upload":true}}`))},
		{"keys_field_kelvin_sign", "malformed", acl(strings.Replace(alice(aliceKeys, aliceGrants), `"keys"`, `"\u212aeys"`, 1))},
		{"key_unused_bits", "malformed", acl(alice(`["`+unusedBits(pub(g.alice))+`"]`, aliceGrants))},
		{"grant_app_not_a_name", "malformed", acl(alice(aliceKeys, `{"Retailer":{"can_upload":true},"retailer":{"can_upload":true}}`))},
		{"users_twice", "malformed", `{"version":2,"users":[],"issued":"2026-11-01T12:00:00Z","users":[` + alice(aliceKeys, aliceGrants) + `]}`},
		{"users_null", "malformed", `{"version":2,"issued":"2026-11-01T12:00:00Z","users":null}`},
		{"issued_missing", "malformed", `{"version":2,"users":[` + alice(aliceKeys, aliceGrants) + `]}`},
		{"user_name_repeated", "malformed", acl(alice(aliceKeys, aliceGrants) + `,{"name":"alice","keys":["` + pub(g.bob) + `"]}`)},
		{"user_without_keys", "malformed", acl(alice(aliceKeys, aliceGrants) + `,{"name":"eve","keys":[]}`)},
		{"same_key_twice_one_user", "ok", acl(alice(`["`+pub(g.alice)+`","`+pub(g.alice)+`"]`, aliceGrants))},
		{"user_name_invalid", "malformed", acl(strings.Replace(alice(aliceKeys, aliceGrants), `"alice"`, `"Alice"`, 1))},
		{"same_key_two_users", "malformed", acl(alice(aliceKeys, aliceGrants) + `,{"name":"eve","keys":` + aliceKeys + `}`)},
		{"no_users", "untrusted_key", `{"version":2,"issued":"2026-11-01T12:00:00Z","users":[]}`},
	}
	for _, c := range cases {
		g.add(g.base("acl_"+c.name, "ACL decoding: "+strings.ReplaceAll(c.name, "_", " "), c.verdict), func(v *Vector) {
			v.ACL = g.raw(manifest.TypeACL, c.payload, g.root)
		})
	}
}

func (g *gen) ed25519Vectors() {
	weak := func(name, desc, hexKey string) {
		key, _ := hex.DecodeString(hexKey)
		text := manifest.PublicKeyPrefix + base64.StdEncoding.EncodeToString(key)
		acl := `{"version":2,"issued":"2026-11-01T12:00:00Z","users":[{"name":"eve","keys":["` + text + `"],"grants":{"retailer":{"can_upload":true}}}]}`
		g.add(g.base("ed25519_"+name, desc, "malformed"), func(v *Vector) {
			v.ACL = g.raw(manifest.TypeACL, acl, g.root)
			// R = the identity, S = 0: verifies for any message under a key of small order.
			forged := append(append([]byte{1}, make([]byte, 31)...), make([]byte, 32)...)
			sum := sha256.Sum256(key)
			v.Latest = editEnvelope(v.Latest, func(m map[string]any) {
				m["signatures"] = []any{map[string]any{"keyid": hex.EncodeToString(sum[:]), "sig": base64.StdEncoding.EncodeToString(forged)}}
			})
		})
	}
	weak("identity_key", "an ACL key that is the identity point (small order), with a signature that it verifies for any message", "0100000000000000000000000000000000000000000000000000000000000000")
	weak("order_8_key", "an ACL key of order 8", "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a")
	weak("order_8_key_sign_bit", "an ACL key of order 8 with the sign bit set", "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc85")
	weak("order_2_key", "an ACL key of order 2 (y = p-1)", "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f")
	weak("non_canonical_key", "an ACL key whose y is p+3, not below p", "f0ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f")
	g.add(g.base("ed25519_non_canonical_s", "alice's valid signature with L added to S", "bad_signature"), func(v *Vector) {
		v.Latest = editEnvelope(v.Latest, func(m map[string]any) {
			s := m["signatures"].([]any)[0].(map[string]any)
			sig, _ := base64.StdEncoding.DecodeString(s["sig"].(string))
			l, _ := hex.DecodeString("edd3f55c1a631258d69cf7a2def9de1400000000000000000000000000000010")
			carry := 0
			for i := range 32 { // S + L, little-endian
				x := int(sig[32+i]) + int(l[i]) + carry
				sig[32+i], carry = byte(x), x>>8
			}
			s["sig"] = base64.StdEncoding.EncodeToString(sig)
		})
	})
}

// pointer signs a pointer made from the valid one by edit, with alice's key.
func (g *gen) pointer(edit func(*manifest.Latest)) string {
	l := g.latestPayload(5)
	edit(&l)
	return g.sign(manifest.TypeLatest, l, g.alice)
}

// deviceIn returns the first device id "device-<n>" whose bucket in the
// rollout is (in true) or is not (in false) below percent*100.
func deviceIn(rollout string, percent int64, in bool) string {
	for n := 0; ; n++ {
		id := fmt.Sprintf("device-%d", n)
		if (manifest.Cohort("retailer", "production", rollout, id) < percent*100) == in {
			return id
		}
	}
}

func (g *gen) releaseVectors() {
	cand := func(l *manifest.Latest) {
		l.Candidate = &manifest.Candidate{Build: g.ref(8), Percent: 10, Rollout: "r8"}
		l.Fallbacks = []manifest.BuildRef{g.ref(6), g.ref(3)}
		l.Build.MinNative, l.Fallbacks[0].MinNative, l.Fallbacks[0].MaxNative = "2.0", "1.2", "1.19.9"
		l.Fallbacks[1].MinNative, l.Fallbacks[1].MaxNative = "", "1.1"
		l.Settings.SelfAssign, l.Notes, l.By = true, "staged rollout of 1.4.8", "alice"
		l.Previous = &manifest.Link{Sequence: 4, SHA256: strings.Repeat("0", 64)}
	}
	in, out := deviceIn("r8", 10, true), deviceIn("r8", 10, false)
	devices := []struct {
		name string
		dev  VecDev
		edit func(*manifest.Latest)
	}{
		{"in_cohort", VecDev{"2.1.0", in, manifest.SelectCandidate, 8}, nil},
		{"out_of_cohort", VecDev{"2.1.0", out, manifest.SelectStable, 7}, nil},
		{"paused", VecDev{"2.1.0", in, manifest.SelectStable, 7}, func(l *manifest.Latest) { l.Candidate.Paused = true }},
		{"percent_0", VecDev{"2.1.0", in, manifest.SelectStable, 7}, func(l *manifest.Latest) { l.Candidate.Percent = 0 }},
		{"percent_100", VecDev{"2.1.0", out, manifest.SelectCandidate, 8}, func(l *manifest.Latest) { l.Candidate.Percent = 100 }},
		{"candidate_native_too_old", VecDev{"2.1.0", in, manifest.SelectStable, 7}, func(l *manifest.Latest) { l.Candidate.Build.MinNative = "3" }},
		{"native_equal_min", VecDev{"2.0.0", out, manifest.SelectStable, 7}, nil},
		{"native_fewer_numbers", VecDev{"2", out, manifest.SelectStable, 7}, nil},
		{"native_prerelease_below_min", VecDev{"2.0.0-beta.1", out, manifest.SelectNone, 0}, nil},
		{"native_build_metadata", VecDev{"2.0.0+45", out, manifest.SelectStable, 7}, nil},
		{"native_newline_in_suffix", VecDev{"2.0.0+\n", out, manifest.SelectNone, 0}, nil},
		{"native_fallback", VecDev{"1.5", out, manifest.SelectFallback, 6}, nil},
		{"native_max_inclusive", VecDev{"1.19.9", out, manifest.SelectFallback, 6}, nil},
		{"native_above_max", VecDev{"1.19.10", out, manifest.SelectNone, 0}, nil},
		{"native_numeric_not_text", VecDev{"1.10", out, manifest.SelectFallback, 6}, nil},
		{"native_second_fallback", VecDev{"1.0.5", out, manifest.SelectFallback, 3}, nil},
		{"native_between", VecDev{"1.1.1", out, manifest.SelectNone, 0}, nil},
		{"native_unreadable", VecDev{"beta", out, manifest.SelectNone, 0}, nil},
		{"native_unreadable_no_bounds", VecDev{"", out, manifest.SelectStable, 7}, func(l *manifest.Latest) { l.Build.MinNative = "" }},
		{"native_leading_zeros", VecDev{"02.00", out, manifest.SelectStable, 7}, nil},
	}
	for _, d := range devices {
		g.add(g.base("select_"+d.name, "native and cohort selection: "+strings.ReplaceAll(d.name, "_", " "), "ok"), func(v *Vector) {
			v.Latest = g.pointer(func(l *manifest.Latest) {
				cand(l)
				if d.edit != nil {
					d.edit(l)
				}
			})
			dev := d.dev
			v.Device = &dev
		})
	}
	g.add(g.base("release_result", "a pointer with a candidate, fallbacks, settings, notes, by and previous", "ok"), func(v *Vector) {
		v.Latest = g.pointer(cand)
		v.Result = &VecRes{Sequence: 5, Build: 7, Candidate: 8}
	})
	bad := []struct {
		name, verdict string
		edit          func(*manifest.Latest)
	}{
		{"percent_101", "malformed", func(l *manifest.Latest) { l.Candidate.Percent = 101 }},
		{"rollout_not_a_name", "malformed", func(l *manifest.Latest) { l.Candidate.Rollout = "R 8" }},
		{"candidate_bundle_elsewhere", "malformed", func(l *manifest.Latest) { l.Candidate.Build.Bundle = "apps/other/bundles/" + g.sha + ".zip" }},
		{"nine_fallbacks", "malformed", func(l *manifest.Latest) {
			l.Fallbacks = nil
			for n := int64(6); n > -3; n-- {
				l.Fallbacks = append(l.Fallbacks, g.ref(n+3))
			}
		}},
		{"eight_fallbacks", "ok", func(l *manifest.Latest) {
			l.Fallbacks = nil
			for n := int64(6); n > -2; n-- {
				l.Fallbacks = append(l.Fallbacks, g.ref(n+3))
			}
		}},
		{"fallbacks_not_decreasing", "malformed", func(l *manifest.Latest) { l.Fallbacks[0], l.Fallbacks[1] = l.Fallbacks[1], l.Fallbacks[0] }},
		{"min_above_max", "malformed", func(l *manifest.Latest) { l.Fallbacks[0].MinNative = "2.0" }},
		{"min_native_not_numeric", "malformed", func(l *manifest.Latest) { l.Build.MinNative = "v2" }},
		{"min_native_five_numbers", "malformed", func(l *manifest.Latest) { l.Build.MinNative = "1.2.3.4.5" }},
		{"min_native_ten_digits", "malformed", func(l *manifest.Latest) { l.Build.MinNative = "1234567890" }},
		{"crc32_upper_case", "malformed", func(l *manifest.Latest) { l.Build.CRC32 = "DEADBEEF" }},
		{"crc32_ok", "ok", func(l *manifest.Latest) { l.Build.CRC32 = "deadbeef" }},
		{"files_digest_without_size", "malformed", func(l *manifest.Latest) { l.Build.FilesSHA256 = g.sha }},
		{"previous_not_below", "malformed", func(l *manifest.Latest) { l.Previous.Sequence = 5 }},
		{"previous_digest_upper_case", "malformed", func(l *manifest.Latest) { l.Previous.SHA256 = strings.Repeat("A", 64) }},
		{"by_other_user", "not_granted", func(l *manifest.Latest) { l.By = "bob" }},
		{"by_unknown_user", "not_granted", func(l *manifest.Latest) { l.By = "mallory" }},
	}
	for _, b := range bad {
		g.add(g.base("release_"+b.name, "pointer rules: "+strings.ReplaceAll(b.name, "_", " "), b.verdict), func(v *Vector) {
			v.Latest = g.pointer(func(l *manifest.Latest) {
				cand(l)
				b.edit(l)
			})
		})
	}
}

// absentValueVectors pin that an optional field written with the value it
// takes when absent ("", 0, false, an empty array or object) is read as if
// it were left out: every rule that asks whether a field is present sees
// it absent.
func (g *gen) absentValueVectors() {
	ref := func(n int64, fields string) string {
		sha := `"` + g.sha + `"`
		return fmt.Sprintf(`{"id":"retailer-%d","number":%d,"version":"1.4.%d","bundle":"apps/retailer/bundles/%s.zip","sha256":%s,"size":40%s}`, n, n, n, g.sha, sha, fields)
	}
	digest := `"` + strings.Repeat("cd", 32) + `"`
	out := deviceIn("r8", 10, false)
	cases := []struct {
		name, desc, verdict, payload string
		dev                          *VecDev
	}{
		{"by", `"by": "" is no by: the signer's grant alone decides`, "ok", g.latestText("by", `""`), nil},
		{"min_native", `"min_native": "" is no lower bound: the build fits any native version, even one that does not parse`, "ok",
			g.latestText("build", ref(7, `,"min_native":""`)), &VecDev{"beta", out, manifest.SelectStable, 7}},
		{"max_native", `"max_native": "" is no upper bound`, "ok",
			g.latestText("build", ref(7, `,"min_native":"1.0.0","max_native":""`)), &VecDev{"999999999", out, manifest.SelectStable, 7}},
		{"min_native_with_max", `"min_native": "" with a max_native: bounded above only`, "ok",
			g.latestText("build", ref(7, `,"min_native":"","max_native":"2.0"`)), &VecDev{"0.1", out, manifest.SelectStable, 7}},
		{"min_native_with_max_above", `"min_native": "" with a max_native: a native version above it fits nothing`, "ok",
			g.latestText("build", ref(7, `,"min_native":"","max_native":"2.0"`)), &VecDev{"2.0.1", out, manifest.SelectNone, 0}},
		{"crc32", `"crc32": "" is no CRC-32`, "ok", g.latestText("build", ref(7, `,"crc32":""`)), nil},
		{"files", `"files_sha256": "" and "files_size": 0 are no file manifest`, "ok",
			g.latestText("build", ref(7, `,"files_sha256":"","files_size":0`)), nil},
		{"files_size", `"files_size": 0 alone is no file manifest`, "ok", g.latestText("build", ref(7, `,"files_size":0`)), nil},
		{"files_sha256", `"files_sha256": "" alone is no file manifest`, "ok", g.latestText("build", ref(7, `,"files_sha256":""`)), nil},
		{"files_size_with_digest", `"files_size": 0 next to a files_sha256: a digest without its size`, "malformed",
			g.latestText("build", ref(7, `,"files_sha256":`+digest+`,"files_size":0`)), nil},
		{"files_sha256_with_size", `"files_sha256": "" next to a files_size: a size without its digest`, "malformed",
			g.latestText("build", ref(7, `,"files_sha256":"","files_size":100`)), nil},
		{"fallbacks", `"fallbacks": [] is no fallback`, "ok", g.latestText("fallbacks", `[]`), &VecDev{"0.9", out, manifest.SelectNone, 0}},
		{"fallback_max_native", `a fallback with "max_native": "" is bounded below only`, "ok",
			g.latestText("build", ref(7, `,"min_native":"2.0"`), "fallbacks", `[`+ref(6, `,"min_native":"1.0","max_native":""`)+`]`), &VecDev{"1.5", out, manifest.SelectFallback, 6}},
		{"paused", `"paused": false is not paused`, "ok",
			g.latestText("candidate", `{"build":`+ref(8, `,"min_native":""`)+`,"percent":100,"rollout":"r8","paused":false}`), &VecDev{"2.0", out, manifest.SelectCandidate, 8}},
		{"settings", `"settings": {} and "notes": "" are the defaults`, "ok", g.latestText("settings", `{}`, "notes", `""`), nil},
		{"self_assign", `"self_assign": false is the default`, "ok", g.latestText("settings", `{"self_assign":false}`), nil},
	}
	for _, c := range cases {
		g.add(g.base("absent_value_"+c.name, c.desc, c.verdict), func(v *Vector) {
			v.Latest = g.raw(manifest.TypeLatest, c.payload, g.alice)
			v.Device = c.dev
		})
	}
	g.add(g.base("absent_value_files_then_manifest", `a file manifest served for a build with "files_sha256": "" and "files_size": 0, which names none`, "files_mismatch"), func(v *Vector) {
		v.Latest = g.raw(manifest.TypeLatest, g.latestText("build", ref(7, `,"files_sha256":"","files_size":0`)), g.alice)
		v.FilesManifest = `{"app":"retailer","files":[]}`
	})
	var h manifest.Halt
	var env manifest.Envelope
	json.Unmarshal([]byte(g.halt(g.pointer(func(*manifest.Latest) {}), 5, nil, g.tracker)), &env)
	json.Unmarshal(env.Payload, &h)
	payload, _ := json.Marshal(h)
	g.add(g.base("absent_value_halt_reason", `a halt with "reason": ""`, "ok"), func(v *Vector) {
		v.Latest = g.raw(manifest.TypeHalt, strings.Replace(string(payload), `"reason":"2 of 20 devices failed"`, `"reason":""`, 1), g.tracker)
		v.Result = &VecRes{Sequence: 6, Build: 7}
	})
}

// halt wraps the envelope inner (of sequence seq) in a halt signed by keys,
// after edit.
func (g *gen) halt(inner string, seq int64, edit func(*manifest.Halt), keys ...ed25519.PrivateKey) string {
	var env manifest.Envelope
	if err := json.Unmarshal([]byte(inner), &env); err != nil {
		g.t.Fatal(err)
	}
	h := manifest.Halt{App: "retailer", Channel: "production", Sequence: seq + 1, Issued: g.t0.Add(time.Minute),
		Reason: "2 of 20 devices failed", Pointer: env, Previous: manifest.LinkTo(seq, []byte(inner))}
	if edit != nil {
		edit(&h)
	}
	return g.sign(manifest.TypeHalt, h, keys...)
}

func (g *gen) haltVectors() {
	withCand := func(l *manifest.Latest) {
		l.Candidate = &manifest.Candidate{Build: g.ref(8), Percent: 100, Rollout: "r8"}
	}
	inner := g.pointer(withCand)
	in := deviceIn("r8", 100, true)
	cases := []struct {
		name, desc, verdict string
		latest              string
		edit                func(*Vector)
	}{
		{"ok", "a tracker key with can_halt halts the candidate: the pointer without it", "ok", g.halt(inner, 5, nil, g.tracker), func(v *Vector) {
			v.Result = &VecRes{Sequence: 6, Build: 7}
			v.Device = &VecDev{"2.0", in, manifest.SelectStable, 7}
		}},
		{"refetch", "the same halt fetched again", "ok", g.halt(inner, 5, nil, g.tracker), func(v *Vector) { v.Expect.MinSequence = 6 }},
		{"rollback", "a halt older than a pointer seen since", "rollback", g.halt(inner, 5, nil, g.tracker), func(v *Vector) { v.Expect.MinSequence = 7 }},
		{"adds_build", "a halt payload carrying its own build and candidate: they are not fields of a halt, and are ignored", "ok",
			g.haltWithExtra(inner, `"build":`+g.refJSON(9)+`,"candidate":{"build":`+g.refJSON(9)+`,"percent":100,"rollout":"x"}`), func(v *Vector) {
				v.Result = &VecRes{Sequence: 6, Build: 7}
			}},
		{"signed_by_uploader", "a halt signed by an uploader without can_halt", "not_granted", g.halt(inner, 5, nil, g.alice), nil},
		{"signed_by_unknown_key", "a halt signed by a key not in the ACL", "untrusted_key", g.halt(inner, 5, nil, g.mallory), nil},
		{"inner_by_halt_key", "the halt key wraps a pointer it signed itself, offering build 9", "not_granted",
			g.halt(g.sign(manifest.TypeLatest, g.latestWith(9), g.tracker), 5, nil, g.tracker), nil},
		{"inner_unsigned", "the halt key wraps an unsigned pointer", "unsigned", g.halt(inner, 5, func(h *manifest.Halt) { h.Pointer.Signatures = []manifest.Signature{} }, g.tracker), nil},
		{"inner_tampered", "the halt key wraps alice's pointer with its payload replaced by one offering build 9", "bad_signature",
			g.halt(inner, 5, func(h *manifest.Halt) { h.Pointer.Payload, _ = json.Marshal(g.latestWith(9)) }, g.tracker), nil},
		{"inner_other_channel", "the halt key wraps a pointer of channel beta", "channel_mismatch",
			g.halt(g.pointer(func(l *manifest.Latest) { l.Channel = "beta" }), 5, nil, g.tracker), nil},
		{"inner_other_app", "the halt key wraps a pointer of another app", "app_mismatch",
			g.halt(g.pointer(func(l *manifest.Latest) { l.App = "other" }), 5, nil, g.tracker), nil},
		{"other_channel", "a halt for channel beta served for production", "channel_mismatch", g.halt(inner, 5, func(h *manifest.Halt) { h.Channel = "beta" }, g.tracker), nil},
		{"of_halt", "a halt wrapping a halt", "malformed", g.halt(g.halt(inner, 5, nil, g.tracker), 6, nil, g.tracker), nil},
		{"of_acl", "a halt wrapping the ACL envelope", "malformed", g.halt(g.goodACL, 5, nil, g.tracker), nil},
		{"sequence_jump", "a halt whose sequence is not the wrapped one's plus one", "malformed", g.halt(inner, 5, func(h *manifest.Halt) { h.Sequence = 1000 }, g.tracker), nil},
		{"previous_mismatch", "a halt whose previous link names another sequence", "malformed", g.halt(inner, 5, func(h *manifest.Halt) { h.Previous.Sequence = 4 }, g.tracker), nil},
		{"inner_expired", "a halt of an expired pointer", "expired", g.halt(inner, 5, nil, g.tracker), func(v *Vector) {
			v.Expect.Now = g.t0.Add(91 * 24 * time.Hour).Format(time.RFC3339)
		}},
		{"grant_other_app", "the tracker's can_halt is for another app", "not_granted", g.halt(inner, 5, nil, g.tracker), func(v *Vector) {
			a := g.aclPayload(3)
			a.Users[2].Grants = map[string]manifest.Grant{"other": {CanHalt: true}}
			v.ACL = g.sign(manifest.TypeACL, a, g.root)
		}},
		{"grant_wildcard", "the tracker's can_halt is for every app", "ok", g.halt(inner, 5, nil, g.tracker), func(v *Vector) {
			a := g.aclPayload(3)
			a.Users[2].Grants = map[string]manifest.Grant{manifest.AllApps: {CanHalt: true}}
			v.ACL = g.sign(manifest.TypeACL, a, g.root)
		}},
	}
	for _, c := range cases {
		g.add(g.base("halt_"+c.name, c.desc, c.verdict), func(v *Vector) {
			v.Latest = c.latest
			if c.edit != nil {
				c.edit(v)
			}
		})
	}
}

func (g *gen) latestWith(build int64) manifest.Latest {
	l := g.latestPayload(5)
	l.Build = g.ref(build)
	return l
}

func (g *gen) refJSON(n int64) string {
	b, _ := json.Marshal(g.ref(n))
	return string(b)
}

// haltWithExtra is a tracker-signed halt of inner (sequence 5) whose payload
// also carries the given fields.
func (g *gen) haltWithExtra(inner, extra string) string {
	var env manifest.Envelope
	json.Unmarshal([]byte(g.halt(inner, 5, nil, g.tracker)), &env)
	payload := strings.TrimSuffix(string(env.Payload), "}") + "," + extra + "}"
	return g.raw(manifest.TypeHalt, payload, g.tracker)
}

func (g *gen) historyVectors() {
	p1 := g.sign(manifest.TypeLatest, g.seqPointer(1, 5, nil), g.alice)
	p2l := g.seqPointer(2, 6, &manifest.Link{})
	p2l.Previous = ptr(manifest.LinkTo(1, []byte(p1)))
	p2l.Candidate = &manifest.Candidate{Build: g.ref(7), Percent: 10, Rollout: "r7"}
	p2 := g.sign(manifest.TypeLatest, p2l, g.alice)
	h3 := g.halt(p2, 2, nil, g.tracker)
	p4 := g.sign(manifest.TypeLatest, g.seqPointer(4, 7, ptr(manifest.LinkTo(3, []byte(h3)))), g.alice)
	p2unlinked := g.sign(manifest.TypeLatest, g.seqPointer(2, 6, nil), g.alice)
	p2wrong := g.sign(manifest.TypeLatest, g.seqPointer(2, 6, ptr(manifest.LinkTo(1, []byte(p4)))), g.alice)
	p2mallory := g.sign(manifest.TypeLatest, g.seqPointer(2, 6, ptr(manifest.LinkTo(1, []byte(p1)))), g.mallory)
	p3mallory := g.sign(manifest.TypeLatest, g.seqPointer(3, 6, ptr(manifest.LinkTo(2, []byte(p2unlinked)))), g.mallory)
	cases := []struct {
		name, desc, verdict string
		entries             []string
	}{
		{"ok", "upload, rollout, halt, upload: each links to the one before", "ok", []string{p1, p2, h3, p4}},
		{"from_middle", "a history read from a later entry on", "ok", []string{h3, p4}},
		{"gap", "the halt is missing", "history_gap", []string{p1, p2, p4}},
		{"unlinked", "an entry without a previous link", "history_gap", []string{p1, p2unlinked}},
		{"wrong_digest", "an entry linking to other bytes", "history_gap", []string{p1, p2wrong}},
		{"out_of_order", "entries in the wrong order", "history_gap", []string{p2, p1}},
		{"untrusted_entry", "an entry signed by a key not in the ACL", "untrusted_key", []string{p1, p2mallory}},
		{"gap_before_untrusted", "a gap, then an entry signed by a key not in the ACL: entries are checked in order, each before its link", "history_gap", []string{p1, p2unlinked, p3mallory}},
	}
	for _, c := range cases {
		g.add(g.base("history_"+c.name, c.desc, c.verdict), func(v *Vector) {
			v.Kind, v.Latest, v.History = "history", "", c.entries
			v.Expect.Now = g.t0.Add(400 * 24 * time.Hour).Format(time.RFC3339) // every entry expired: history ignores expiry
		})
	}
}

func ptr[T any](v T) *T { return &v }

// unusedBits is key's text form with the unused bits of its last base64
// character set: the same 32 bytes to a lax decoder.
func unusedBits(key string) string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
	b := []byte(key)
	b[len(b)-2] = alphabet[strings.IndexByte(alphabet, b[len(b)-2])|1]
	return string(b)
}

func (g *gen) seqPointer(seq, build int64, prev *manifest.Link) manifest.Latest {
	l := g.latestWith(build)
	l.Sequence, l.Previous = seq, prev
	return l
}

func (g *gen) filesVectors() {
	content := []byte("<!doctype html><title>app</title>")
	sum := sha256.Sum256(content)
	m := manifest.FileManifest{App: "retailer", Files: []manifest.FileEntry{
		{Name: "assets/app.js", SHA256: strings.Repeat("ab", 32), Size: 100000, Encoding: manifest.EncodingBrotli},
		{Name: "index.html", SHA256: hex.EncodeToString(sum[:]), Size: int64(len(content))},
	}}
	good, _ := json.Marshal(m)
	signed := func(data []byte) string {
		return g.pointer(func(l *manifest.Latest) {
			s := sha256.Sum256(data)
			l.Build.FilesSHA256, l.Build.FilesSize = hex.EncodeToString(s[:]), int64(len(data))
		})
	}
	entries := func(files string) []byte { return []byte(`{"app":"retailer","files":[` + files + `]}`) }
	f := func(name, enc string) string {
		e := fmt.Sprintf(`{"name":%q,"sha256":"%s","size":1`, name, strings.Repeat("ab", 32))
		if enc != "" {
			e += fmt.Sprintf(`,"encoding":%q`, enc)
		}
		return e + "}"
	}
	cases := []struct {
		name, desc, verdict string
		signedFor, served   []byte
		file                *VecFile
	}{
		{"ok", "the file manifest the build names, and one file", "ok", good, good, &VecFile{1, base64.StdEncoding.EncodeToString(content)}},
		{"file_tampered", "a file whose bytes differ from its entry", "files_mismatch", good, good, &VecFile{1, base64.StdEncoding.EncodeToString(append(content, ' '))}},
		{"tampered", "a manifest whose bytes differ from the signed digest", "files_mismatch", good, bytes.Replace(good, []byte("100000"), []byte("100001"), 1), nil},
		{"not_signed", "a manifest for a build that names none", "files_mismatch", nil, good, nil},
		{"other_app", "a manifest (with the signed digest) for another app", "malformed", []byte(`{"app":"other","files":[]}`), nil, nil},
		{"unsorted", "entries not sorted by name", "malformed", entries(f("b", "") + "," + f("a", "")), nil, nil},
		{"duplicate_name", "a name listed twice", "malformed", entries(f("a", "") + "," + f("a", "br")), nil, nil},
		{"dot_dot", "a name with a .. element", "malformed", entries(f("a/../b", "")), nil, nil},
		{"leading_slash", "a name starting with /", "malformed", entries(f("/a", "")), nil, nil},
		{"backslash", "a name with a backslash", "malformed", entries(f(`a\b`, "")), nil, nil},
		{"br_name_plain", "a file named .br stored as is: the plugin would decompress it", "malformed", entries(f("a.br", "")), nil, nil},
		{"br_name_brotli", "a file named .br stored Brotli-compressed", "ok", entries(f("a.br", "br")), nil, nil},
		{"unknown_encoding", "encoding gzip", "malformed", entries(f("a", "gzip")), nil, nil},
		{"null_encoding", "encoding null", "malformed", []byte(`{"app":"retailer","files":[{"name":"a","sha256":"` + strings.Repeat("ab", 32) + `","size":1,"encoding":null}]}`), nil, nil},
	}
	for _, c := range cases {
		g.add(g.base("files_"+c.name, c.desc, c.verdict), func(v *Vector) {
			v.Latest = g.goodLatest
			if c.signedFor != nil {
				v.Latest = signed(c.signedFor)
			}
			served := c.served
			if served == nil {
				served = c.signedFor
			}
			v.FilesManifest, v.File = string(served), c.file
		})
	}
	g.storedVectors(good, signed)
}

// storedVectors are file manifests as stored: gzip-compressed, or not.
func (g *gen) storedVectors(good []byte, signed func([]byte) string) {
	gz, ok := manifest.EncodeStoredFileManifest(good)
	if !ok {
		panic("the vectors' file manifest does not compress")
	}
	longer, _ := manifest.EncodeStoredFileManifest(append(append([]byte{}, good...), ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' '))
	tampered, _ := manifest.EncodeStoredFileManifest(bytes.Replace(good, []byte("100000"), []byte("100001"), 1))
	badCRC := append([]byte{}, gz...)
	badCRC[len(badCRC)-8] ^= 1
	named := append(append(append([]byte{}, gz[:10]...), "latest.json\x00"...), gz[10:]...)
	named[3] = 0x08 // FNAME
	reserved := append([]byte{}, gz...)
	reserved[3] = 0x20
	cases := []struct {
		name, desc, verdict string
		stored              []byte
	}{
		{"gzip", "the file manifest the build names, stored gzip-compressed", "ok", gz},
		{"plain", "the file manifest the build names, stored as is", "ok", good},
		{"gzip_tampered", "the gzip form of other bytes than the signed ones", "files_mismatch", tampered},
		{"gzip_longer", "a gzip form that decodes to more bytes than files_size", "files_mismatch", longer},
		{"gzip_bad_crc", "a gzip form whose CRC-32 does not match its data", "files_mismatch", badCRC},
		{"gzip_truncated", "a gzip form without its last 4 bytes", "files_mismatch", gz[:len(gz)-4]},
		{"gzip_trailing_byte", "a gzip form followed by the byte x", "files_mismatch", append(append([]byte{}, gz...), 'x')},
		{"gzip_two_members", "the gzip form followed by a second member of the same bytes", "files_mismatch", append(append([]byte{}, gz...), gz...)},
		{"gzip_zero_padding", "the gzip form followed by four zero bytes", "files_mismatch", append(append([]byte{}, gz...), 0, 0, 0, 0)},
		{"gzip_name", "a gzip form with a file name in its header (FLG 8), which deploy never writes", "files_mismatch", named},
		{"gzip_reserved_flag", "a gzip form with a reserved header flag (FLG 0x20) set", "files_mismatch", reserved},
	}
	for _, c := range cases {
		g.add(g.base("files_stored_"+c.name, c.desc, c.verdict), func(v *Vector) {
			v.Latest = signed(good)
			v.FilesStored = base64.StdEncoding.EncodeToString(c.stored)
		})
	}
}

func (g *gen) patchVectors() {
	entry := func(name, seed string) manifest.FileEntry {
		sum := sha256.Sum256([]byte(seed))
		return manifest.FileEntry{Name: name, SHA256: hex.EncodeToString(sum[:]), Size: int64(len(seed))}
	}
	v1 := manifest.FileManifest{App: "retailer", Files: []manifest.FileEntry{entry("a.js", "1"), entry("index.html", "1"), entry("z.svg", "1")}}
	v2 := manifest.FileManifest{App: "retailer", Files: []manifest.FileEntry{entry("a.js", "1"), entry("café/é.js", "2"), entry("index.html", "2"), entry("z.svg", "1")}}
	base, _ := json.Marshal(v1)
	target, _ := json.Marshal(v2)
	good, err := manifest.MakeFilesPatch("retailer", base, target)
	if err != nil {
		panic(err)
	}
	var p manifest.FilesPatch
	json.Unmarshal(good, &p)
	edit := func(f func(*manifest.FilesPatch)) []byte {
		q := p
		q.Ops = append([]manifest.PatchOp(nil), p.Ops...)
		f(&q)
		b, _ := json.Marshal(q)
		return b
	}
	sum := sha256.Sum256(target)
	latest := g.pointer(func(l *manifest.Latest) {
		l.Build.FilesSHA256, l.Build.FilesSize = hex.EncodeToString(sum[:]), int64(len(target))
	})
	cases := []struct {
		name, desc, verdict string
		base, patch         []byte
	}{
		{"ok", "a patch that makes the signed manifest, inserting a name of 2-byte UTF-8 characters", "ok", base, good},
		{"other_base", "the patch applied to another base", "files_mismatch", target, good},
		{"other_target", "a patch to another manifest", "files_mismatch", base, edit(func(q *manifest.FilesPatch) { q.To = strings.Repeat("ab", 32) })},
		{"other_app", "a patch for another app", "malformed", base, edit(func(q *manifest.FilesPatch) { q.App = "other" })},
		{"past_base", "a copy that ends past the base", "malformed", base, edit(func(q *manifest.FilesPatch) { q.Ops[0].Length = int64(len(base)) + 1 })},
		{"too_long", "ops that make more bytes than files_size", "files_mismatch", base, edit(func(q *manifest.FilesPatch) { q.Ops = append(q.Ops, manifest.PatchOp{Data: "x"}) })},
		{"other_bytes", "ops that make other bytes of the right length", "files_mismatch", base, edit(func(q *manifest.FilesPatch) {
			for i := range q.Ops {
				if q.Ops[i].Data != "" {
					q.Ops[i].Data = strings.Replace(q.Ops[i].Data, "é", "è", 1)
					return
				}
			}
		})},
		{"null_ops", "ops null", "malformed", base, []byte(`{"app":"retailer","from":"` + p.From + `","to":"` + p.To + `","ops":null}`)},
	}
	for _, c := range cases {
		g.add(g.base("patch_"+c.name, c.desc, c.verdict), func(v *Vector) {
			v.Latest = latest
			v.FilesPatch = &VecPat{Base: string(c.base), Patch: string(c.patch)}
		})
	}
}

func (g *gen) cohortVectors() {
	cases := [][4]string{
		{"retailer", "production", "r8", "device-0"},
		{"retailer", "production", "r8", "device-1"},
		{"retailer", "production", "r9", "device-1"},
		{"retailer", "beta", "r8", "device-1"},
		{"ab", "c", "r", "d"},
		{"a", "bc", "r", "d"},
		{"retailer", "production", "r8", ""},
		{"retailer", "production", "r8", "5f1c3a9e-0d2b-4c8e-9a7f-3e2d1c0b9a87"},
		{"retailer", "production", "r8", "appareil-é-日本"},
		{"retailer", "production", "r8", "5F1C3A9E-0D2B-4C8E-9A7F-3E2D1C0B9A87"}, // the bucket of the lowercase ID
		{"retailer", "production", "r8", "APPAREIL-É-日本"},                        // only A-Z are lowercased
	}
	for i, c := range cases {
		g.add(Vector{Name: fmt.Sprintf("cohort_%d", i), Description: "cohort bucket of " + strings.Join(c[:], " / "), Kind: "cohort",
			Cohort: &VecCoh{App: c[0], Channel: c[1], Rollout: c[2], Device: c[3], Bucket: manifest.Cohort(c[0], c[1], c[2], c[3])}, Verdict: "ok"}, nil)
	}
}
