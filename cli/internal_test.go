package cli

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestPanicIsInternalError makes a command panic and checks that the user
// gets one line naming an internal error and where to report it, exit
// status 70 (internal), no stack trace or Go internals, and the usual JSON
// error under --json.
func TestPanicIsInternalError(t *testing.T) {
	isolate(t)
	beforeCommand = func() {
		var s []string
		_ = s[len(s)] // index out of range, as a real bug would
	}
	t.Cleanup(func() { beforeCommand = nil })

	noInternals := func(args []string, outputs ...string) {
		t.Helper()
		for _, o := range outputs {
			for _, bad := range []string{"goroutine", "panic:", ".go:", "runtime error", "index out of range"} {
				if strings.Contains(o, bad) {
					t.Errorf("deploy %q printed %q:\n%s", args, bad, o)
				}
			}
		}
		checkClean(t, args, outputs...)
	}

	args := []string{"version"}
	status, out, errOut := run(t, args)
	if status != exitInternal || exitInternal != 70 {
		t.Errorf("deploy %q exited %d, want 70", args, status)
	}
	if out != "" {
		t.Errorf("deploy %q printed on stdout: %q", args, out)
	}
	want := "deploy: internal error: deploy stopped on a bug; please report it at " + reportURL + " with the command you ran\n"
	if errOut != want {
		t.Errorf("deploy %q printed\n%q\nwant\n%q", args, errOut, want)
	}
	noInternals(args, out, errOut)

	for _, args := range [][]string{{"version", "--json"}, {"list", "builds", "app=demo", "json=1"}} {
		status, out, errOut = run(t, args)
		if status != exitInternal {
			t.Errorf("deploy %q exited %d, want 70", args, status)
		}
		var doc struct {
			Error struct{ Code, Message string }
		}
		if err := json.Unmarshal([]byte(out), &doc); err != nil {
			t.Fatalf("deploy %q printed no JSON on stdout: %v\n%s", args, err, out)
		}
		if doc.Error.Code != "internal" || !strings.HasPrefix(doc.Error.Message, "internal error: ") || !strings.Contains(doc.Error.Message, reportURL) {
			t.Errorf("deploy %q printed %s", args, out)
		}
		if errOut != "" {
			t.Errorf("deploy %q printed on stderr with --json: %q", args, errOut)
		}
		noInternals(args, out, errOut)
	}
}
