package manifest_test

import (
	"bytes"
	"encoding/base64"
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

// Vector is one case of the table shared with the TypeScript client. Kind
// "" verifies latest.json (then the optional later stages); "history"
// verifies a channel's history; "cohort" computes one cohort bucket.
type Vector struct {
	Name        string   `json:"name"`
	Description string   `json:"description"`
	Kind        string   `json:"kind,omitempty"`
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
	Bundle        string   `json:"bundle,omitempty"`         // base64 bundle bytes to check, if any
	FilesManifest string   `json:"files_manifest,omitempty"` // file manifest bytes to check against the build, if any
	FilesStored   string   `json:"files_stored,omitempty"`   // base64 stored form of a file manifest to read against the build, if any
	File          *VecFile `json:"file,omitempty"`           // then one file's content to check
	FilesPatch    *VecPat  `json:"files_patch,omitempty"`    // a patch to apply to a base, then check against the build
	History       []string `json:"history,omitempty"`        // kind "history": the entries, oldest first
	Cohort        *VecCoh  `json:"cohort,omitempty"`         // kind "cohort"
	Device        *VecDev  `json:"device,omitempty"`         // a device to select a build for
	Result        *VecRes  `json:"result,omitempty"`         // what an "ok" verification returns
	Verdict       string   `json:"verdict"`                  // "ok" or a manifest.Rule
}

// VecFile is a file's content (base64) for entry Index of the manifest.
type VecFile struct {
	Index   int    `json:"index"`
	Content string `json:"content"`
}

// VecPat is a file manifest patch and the base it applies to.
type VecPat struct {
	Base  string `json:"base"`
	Patch string `json:"patch"`
}

// VecCoh is a cohort computation and its bucket.
type VecCoh struct {
	App     string `json:"app"`
	Channel string `json:"channel"`
	Rollout string `json:"rollout"`
	Device  string `json:"device"`
	Bucket  int64  `json:"bucket"`
}

// VecDev is a device and the selection it must get.
type VecDev struct {
	Native string `json:"native"`
	ID     string `json:"id"`
	Reason string `json:"reason"`
	Build  int64  `json:"build"` // 0 when nothing is selected
}

// VecRes is the pointer an accepted vector yields: its sequence, stable
// build and candidate build (0 if none).
type VecRes struct {
	Sequence  int64 `json:"sequence"`
	Build     int64 `json:"build"`
	Candidate int64 `json:"candidate"`
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
	if len(vs) < 100 {
		t.Fatalf("only %d vectors", len(vs))
	}
	for _, v := range vs {
		t.Run(v.Name, func(t *testing.T) {
			got := "ok"
			if err := runVector(t, v); err != nil {
				got = string(manifest.RuleOf(err))
				if got == "" {
					t.Fatalf("untyped error: %v", err)
				}
			}
			if got != v.Verdict {
				t.Fatalf("verdict %q, want %q", got, v.Verdict)
			}
		})
	}
}

// runVector runs one vector and returns its verification error.
func runVector(t *testing.T, v Vector) error {
	if v.Kind == "cohort" {
		c := v.Cohort
		if got := manifest.Cohort(c.App, c.Channel, c.Rollout, c.Device); got != c.Bucket {
			t.Fatalf("bucket %d, want %d", got, c.Bucket)
		}
		return nil
	}
	roots, err := manifest.ParsePublicKeys(strings.Join(v.RootKeys, ","))
	if err != nil {
		t.Fatal(err)
	}
	now, err := time.Parse(time.RFC3339, v.Expect.Now)
	if err != nil {
		t.Fatal(err)
	}
	trust := manifest.Trust{Roots: roots, Threshold: v.Threshold}
	acl, err := trust.VerifyACL([]byte(v.ACL), v.Expect.MinACLVersion)
	if err != nil {
		return err
	}
	if v.Kind == "history" {
		entries := make([][]byte, len(v.History))
		for i, h := range v.History {
			entries[i] = []byte(h)
		}
		_, err := acl.VerifyHistory(v.Expect.App, v.Expect.Channel, entries)
		return err
	}
	l, err := acl.VerifyLatest([]byte(v.Latest), manifest.Expect{
		App: v.Expect.App, Channel: v.Expect.Channel, MinSequence: v.Expect.MinSequence, Now: now})
	if err != nil {
		return err
	}
	checkResult(t, v, l)
	return laterStages(v, l)
}

func checkResult(t *testing.T, v Vector, l *manifest.Latest) {
	if r := v.Result; r != nil {
		var cand int64
		if l.Candidate != nil {
			cand = l.Candidate.Build.Number
		}
		if got := (VecRes{l.Sequence, l.Build.Number, cand}); got != *r {
			t.Fatalf("result %+v, want %+v", got, *r)
		}
	}
	if d := v.Device; d != nil {
		s := l.Select(d.Native, d.ID)
		var n int64
		if s.Build != nil {
			n = s.Build.Number
		}
		if s.Reason != d.Reason || n != d.Build {
			t.Fatalf("selected %s build %d, want %s build %d", s.Reason, n, d.Reason, d.Build)
		}
	}
}

func laterStages(v Vector, l *manifest.Latest) error {
	if v.Bundle != "" {
		b, _ := base64.StdEncoding.DecodeString(v.Bundle)
		if err := manifest.VerifyBundle(l.Build, bytes.NewReader(b)); err != nil {
			return err
		}
	}
	if v.FilesPatch != nil {
		_, _, err := manifest.ApplyFilesPatch(l.Build, l.App, []byte(v.FilesPatch.Base), []byte(v.FilesPatch.Patch))
		return err
	}
	if v.FilesStored != "" {
		b, _ := base64.StdEncoding.DecodeString(v.FilesStored)
		_, _, err := manifest.ReadFileManifest(l.Build, l.App, b)
		return err
	}
	if v.FilesManifest == "" {
		return nil
	}
	m, err := manifest.CheckFileManifest(l.Build, l.App, []byte(v.FilesManifest))
	if err != nil || v.File == nil {
		return err
	}
	b, _ := base64.StdEncoding.DecodeString(v.File.Content)
	return manifest.VerifyFile(m.Files[v.File.Index], bytes.NewReader(b))
}
