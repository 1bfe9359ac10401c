package manifest

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
)

// testManifest is the bytes of a file manifest of n files, with the
// contents of the names in changed and extra differing.
func testManifest(t *testing.T, n int, changed map[string]string) []byte {
	t.Helper()
	m := FileManifest{App: "retailer"}
	for i := range n {
		name := fmt.Sprintf("svg/icon-%04d.svg", i)
		m.Files = append(m.Files, FileEntry{Name: name, SHA256: digest(name + changed[name]), Size: int64(100 + i)})
	}
	data, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func digest(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

func refOf(data []byte) BuildRef {
	return BuildRef{ID: "retailer/2", FilesSHA256: digest(string(data)), FilesSize: int64(len(data))}
}

func TestFilesPatchMakesTheTargetFromLittle(t *testing.T) {
	base := testManifest(t, 1500, nil)
	for name, target := range map[string][]byte{
		"one file changed":  testManifest(t, 1500, map[string]string{"svg/icon-0003.svg": "x"}),
		"two files changed": testManifest(t, 1500, map[string]string{"svg/icon-0000.svg": "x", "svg/icon-1499.svg": "y"}),
		"files added":       testManifest(t, 1510, nil),
		"files removed":     testManifest(t, 1200, nil),
		"nothing in common": testManifest(t, 3, map[string]string{"svg/icon-0000.svg": "a", "svg/icon-0001.svg": "b", "svg/icon-0002.svg": "c"}),
		"the same manifest": base,
	} {
		t.Run(name, func(t *testing.T) {
			patch, err := MakeFilesPatch("retailer", base, target)
			if err != nil {
				t.Fatal(err)
			}
			m, got, err := ApplyFilesPatch(refOf(target), "retailer", base, patch)
			if err != nil {
				t.Fatalf("apply: %v", err)
			}
			if string(got) != string(target) || len(m.Files) == 0 {
				t.Fatalf("applied patch makes %d bytes, want the target's %d", len(got), len(target))
			}
			if name == "one file changed" && len(patch) > 600 {
				t.Errorf("patch for one changed file is %d bytes of a %d-byte manifest, want at most 600", len(patch), len(target))
			}
		})
	}
}

func TestFilesPatchRefusesWhatDoesNotMakeTheSignedManifest(t *testing.T) {
	base := testManifest(t, 20, nil)
	target := testManifest(t, 20, map[string]string{"svg/icon-0003.svg": "x"})
	ref := refOf(target)
	good, err := MakeFilesPatch("retailer", base, target)
	if err != nil {
		t.Fatal(err)
	}
	var p FilesPatch
	if err := json.Unmarshal(good, &p); err != nil {
		t.Fatal(err)
	}
	edit := func(f func(*FilesPatch)) []byte {
		q := p
		q.Ops = append([]PatchOp(nil), p.Ops...)
		f(&q)
		b, _ := json.Marshal(q)
		return b
	}
	other := testManifest(t, 20, map[string]string{"svg/icon-0009.svg": "z"})
	for _, c := range []struct {
		name  string
		base  []byte
		patch []byte
		ref   BuildRef
		rule  Rule
	}{
		{"not JSON", base, []byte("{"), ref, RuleMalformed},
		{"a null", base, []byte(`{"app":"retailer","from":null,"to":"","ops":[]}`), ref, RuleMalformed},
		{"another app", base, edit(func(q *FilesPatch) { q.App = "other" }), ref, RuleMalformed},
		{"another base", other, good, ref, RuleFilesMismatch},
		{"another target", base, good, refOf(other), RuleFilesMismatch},
		{"a build without files", base, good, BuildRef{ID: "retailer/2"}, RuleFilesMismatch},
		{"a copy past the base", base, edit(func(q *FilesPatch) { q.Ops[0].Offset = int64(len(base)) }), ref, RuleMalformed},
		{"a copy overflowing", base, edit(func(q *FilesPatch) { q.Ops[0].Offset, q.Ops[0].Length = 1, 1<<62 }), ref, RuleMalformed},
		{"too many bytes", base, edit(func(q *FilesPatch) { q.Ops = append(q.Ops, PatchOp{Data: "x"}) }), ref, RuleFilesMismatch},
		{"other bytes", base, edit(func(q *FilesPatch) {
			last := &q.Ops[len(q.Ops)-1]
			if last.Length > 0 {
				last.Offset--
			} else {
				last.Data = strings.Replace(last.Data, "1", "2", 1)
			}
		}), ref, RuleFilesMismatch},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, _, err := ApplyFilesPatch(c.ref, "retailer", c.base, c.patch)
			if RuleOf(err) != c.rule {
				t.Fatalf("got %v, want rule %s", err, c.rule)
			}
		})
	}
}

func TestFilesPatchKey(t *testing.T) {
	from, to := digest("a"), digest("b")
	key := FilesPatchKey("retailer", from, to)
	if key != "apps/retailer/files/patches/"+from+"-"+to+".json" {
		t.Fatalf("key %s", key)
	}
	if f, g, ok := ParseFilesPatchKey("retailer", key); !ok || f != from || g != to {
		t.Fatalf("parse %s: %s %s %v", key, f, g, ok)
	}
	for _, bad := range []string{FileManifestKey("retailer", from), FilesPatchKey("other", from, to), "apps/retailer/files/patches/" + from + ".json", FilesPatchKey("retailer", from, "x")} {
		if _, _, ok := ParseFilesPatchKey("retailer", bad); ok {
			t.Errorf("ParseFilesPatchKey(%s) ok", bad)
		}
	}
}
