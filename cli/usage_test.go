package cli

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cartona/deploy/manifest"
	"github.com/cartona/deploy/publish"
)

// userSetup isolates the test and returns the parameters that keep every
// run on one store and one pair of keys (run gives each a fresh home), in
// a folder holding the web build www.
func userSetup(t *testing.T) (dir string, where []string) {
	t.Helper()
	isolate(t)
	dir, _ = os.Getwd()
	if err := os.MkdirAll("www", 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile("www/index.html", []byte("<html><script>CapacitorUpdater.notifyAppReady()</script>"), 0o644); err != nil {
		t.Fatal(err)
	}
	// An upload creates a key only at the default path, which each run's
	// fresh home changes: the user's key is made here.
	if _, err := manifest.GenerateKey(dir + "/user.key"); err != nil {
		t.Fatal(err)
	}
	return dir, []string{"store=file://" + dir + "/store", "key_file=" + dir + "/user.key", "root_key_file=" + dir + "/root.key"}
}

// with is args followed by the parameters where.
func with(where []string, args ...string) []string {
	return append(append([]string{}, args...), where...)
}

// What users mistype gets the usage status and a message naming the
// mistake, and writes nothing: no key, no store.
func TestMistakesAreUsageErrors(t *testing.T) {
	dir, where := userSetup(t)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"list", "build", "app=demo"}, `unknown command "build" for "deploy list" (did you mean "builds"?)`},
		{[]string{"channel", "lst", "app=demo"}, `unknown command "lst" for "deploy channel"`},
		{[]string{"completion", "tcsh"}, `unknown command "tcsh" for "deploy completion"`},
		{[]string{"help", "nosuch"}, `no help topic "nosuch"`},
		{[]string{"help", "list", "build"}, `no help topic "list build"`},
		{[]string{"uplaod"}, `unknown command "uplaod" for "deploy" (did you mean "upload"?)`},
		{with(where, "upload", "app=demo", "dir=www", "channel="), "channel= is empty"},
		{with(where, "upload", "app=Demo", "dir=www"), `invalid app name "Demo"`},
		{with(where, "upload", "app=demo", "dir=www", "channel=Beta"), `invalid channel name "Beta"`},
		{with(where, "upload", "app=demo", "dir=www", "expires=1s"), "too short"},
		{with(where, "upload", "app=demo", "dir=www", "version=builtin"), "the bundle built into the app"},
		{with(where, "upload", "app=demo", "dir=www", "rollout=100"), "1 to 99"},
		{with(where, "upload", "app=demo", "dir=www", "rollout=0"), "1 to 99"},
		{with(where[1:], "upload", "app=demo", "dir=www", "store=file://relative/path"), "not an absolute file URL"},
		{with(where, "prune", "app=Demo"), `invalid app name "Demo"`},
		{with(where, "verify", "app=Demo"), `invalid app name "Demo"`},
	} {
		status, _, errOut := run(t, tc.args)
		if status != exitUsage || !strings.Contains(errOut, tc.want) {
			t.Errorf("deploy %q: exit %d, stderr %q; want %d and %q", tc.args, status, errOut, exitUsage, tc.want)
		}
		for _, name := range []string{"store", "root.key", "relative"} {
			if _, err := os.Stat(filepath.Join(dir, name)); err == nil {
				t.Fatalf("deploy %q created %s before refusing", tc.args, name)
			}
		}
	}
	for _, args := range [][]string{{"list"}, {"help", "list", "builds"}, {"completion", "bash"}} {
		if status, out, errOut := run(t, args); status != exitOK || out == "" {
			t.Errorf("deploy %q: exit %d, stdout %d bytes, stderr %q; want help and 0", args, status, len(out), errOut)
		}
	}
}

// A value with newlines, such as notes from a commit message, is one
// key=value parameter.
func TestNotesSpanLines(t *testing.T) {
	_, where := userSetup(t)
	notes := "Fix checkout\n\nCloses #12"
	if status, _, errOut := run(t, with(where, "upload", "app=demo", "dir=www", "notes="+notes)); status != exitOK {
		t.Fatalf("upload with notes on three lines: exit %d\n%s", status, errOut)
	}
	_, out, _ := run(t, with(where, "history", "app=demo", "--json"))
	var doc struct{ Entries []struct{ Notes string } }
	if err := json.Unmarshal([]byte(out), &doc); err != nil || len(doc.Entries) != 1 || doc.Entries[0].Notes != notes {
		t.Fatalf("history = %s (%v), want the notes %q", out, err, notes)
	}
}

// The next step a staged upload suggests raises its share.
func TestRolloutHintRaisesTheShare(t *testing.T) {
	_, where := userSetup(t)
	if status, _, errOut := run(t, with(where, "upload", "app=demo", "dir=www")); status != exitOK {
		t.Fatalf("first upload: exit %d\n%s", status, errOut)
	}
	for i, tc := range []struct{ rollout, next string }{{"5", "percent=10"}, {"10", "percent=50"}, {"60", "percent=100"}} {
		if err := os.WriteFile("www/app.js", []byte(strings.Repeat("v", i+1)), 0o644); err != nil {
			t.Fatal(err)
		}
		status, out, errOut := run(t, with(where, "upload", "app=demo", "dir=www", "rollout="+tc.rollout))
		if status != exitOK || !strings.Contains(out, tc.next+"`") {
			t.Errorf("upload rollout=%s: exit %d, stdout %q, stderr %q; want the hint %s", tc.rollout, status, out, errOut, tc.next)
		}
	}
}

// After a channel is deleted, what users run next says so, and no hint
// sends them back to the deleted name.
func TestDeletedChannelIsNamedAsDeleted(t *testing.T) {
	_, where := userSetup(t)
	for i, args := range [][]string{
		{"upload", "app=demo", "dir=www", "channel=beta"},
		{"upload", "app=demo", "dir=www", "channel=beta"}, // past its first pointer
		{"channel", "delete", "app=demo", "channel=beta"},
	} {
		if err := os.WriteFile("www/app.js", []byte(strings.Repeat("v", i+1)), 0o644); err != nil {
			t.Fatal(err)
		}
		if status, _, errOut := run(t, with(where, args...)); status != exitOK {
			t.Fatalf("deploy %q: exit %d\n%s", args, status, errOut)
		}
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"verify", "app=demo", "channel=beta"}, "channel beta of demo was deleted"},
		{[]string{"channel", "create", "app=demo", "channel=beta", "build=1"}, "channel beta of demo was deleted"},
		{[]string{"upload", "app=demo", "dir=www", "channel=beta"}, "channel beta of demo was deleted"},
	} {
		if status, _, errOut := run(t, with(where, tc.args...)); status == exitOK || !strings.Contains(errOut, tc.want) || strings.Contains(errOut, "deploy upload app=demo channel=beta") {
			t.Errorf("deploy %q: exit %d, stderr %q; want %q", tc.args, status, errOut, tc.want)
		}
	}
	if status, out, _ := run(t, with(where, "history", "app=demo", "channel=beta")); status != exitOK || !strings.Contains(out, "channel beta of demo was deleted") {
		t.Errorf("history of the deleted channel: exit %d\n%s", status, out)
	}
}

// Serve refuses values no tracker can use.
func TestServeRefusesImpossibleValues(t *testing.T) {
	dir, where := userSetup(t)
	if status, _, errOut := run(t, with(where, "upload", "app=demo", "dir=www")); status != exitOK {
		t.Fatalf("upload: exit %d\n%s", status, errOut)
	}
	for _, tc := range []struct{ param, want string }{
		{"halt_percent=200", "over 100"},
		{"retention=-1h", "negative"},
		{"cache_ttl=-1s", "cache_ttl=-1s is negative"},
		{"addr=:99999", "addr=:99999 is not a listen address: port 99999 is out of range; give host:port with a port from 1 to 65535"},
		{"addr=bad", "addr=bad is not a listen address: it has no port; give host:port"},
		{"addr=256.1.1.1:80", "addr=256.1.1.1:80 is not a listen address: 256.1.1.1 is not an IPv4 address"},
		{"addr=:http-ish", "addr=:http-ish is not a listen address"},
		{"metrics_addr=bad", "metrics_addr=bad is not a listen address: it has no port; give host:port with a port from 1 to 65535, such as metrics_addr=:9090 (every interface) or metrics_addr=127.0.0.1:9090 (this machine only)"},
		{"public_url=notaurl", "public_url=notaurl is not an absolute http(s) URL; give the URL devices reach the tracker at, such as public_url=https://updates.example.com"},
		{"cdn=d123.cloudfront.net", "cdn=d123.cloudfront.net is not an absolute http(s) URL"},
		{"min_acl_version=-1", "min_acl_version=-1 is negative"},
		{"halt_key_file=" + dir + "/missing.key", "no key at " + dir + "/missing.key (halt_key_file)\nhint: create the tracker's key with `deploy keys generate key_file=" + dir + "/missing.key`"},
	} {
		status, _, errOut := run(t, with(where, "serve", "addr=127.0.0.1:0", tc.param))
		if status != exitUsage || !strings.Contains(errOut, tc.want) {
			t.Errorf("serve %s: exit %d, stderr %q; want %d and %q", tc.param, status, errOut, exitUsage, tc.want)
		}
		// Refused before anything is opened or said.
		if strings.Contains(errOut, "listening") || strings.Contains(errOut, "public_url is not set") {
			t.Errorf("serve %s printed a startup line before refusing it:\n%s", tc.param, errOut)
		}
	}

	// A port in use is no mistake in the command line: unavailable, and
	// the tracker says it listens only once both addresses are open.
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	for _, param := range []string{"addr=" + busy.Addr().String(), "metrics_addr=" + busy.Addr().String()} {
		status, _, errOut := run(t, with(where, "serve", "addr=127.0.0.1:0", param))
		if status != exitUnavailable || !strings.Contains(errOut, "pick another with "+strings.SplitN(param, "=", 2)[0]+"=") || strings.Contains(errOut, "listening on") {
			t.Errorf("serve %s on a port in use: exit %d, stderr %q; want %d, the parameter named and no \"listening on\"", param, status, errOut, exitUnavailable)
		}
	}
}

// prune --json lists what it removed as arrays, empty when nothing went.
func TestPruneJSONHasArrays(t *testing.T) {
	_, where := userSetup(t)
	if status, _, errOut := run(t, with(where, "upload", "app=demo", "dir=www")); status != exitOK {
		t.Fatalf("upload: exit %d\n%s", status, errOut)
	}
	_, out, _ := run(t, with(where, "prune", "app=demo", "dry_run=1", "--json"))
	var doc map[string]any
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatalf("prune --json: %v\n%s", err, out)
	}
	for _, k := range []string{"builds", "objects", "incomplete_uploads"} {
		if _, ok := doc[k].([]any); !ok {
			t.Errorf("prune --json %s = %v, want an array", k, doc[k])
		}
	}
}

// prune reports the incomplete uploads it aborts, or would abort, apart
// from the objects it removes.
func TestPrintPruneUploads(t *testing.T) {
	started := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	res := &publish.PruneResult{App: "demo", Items: []publish.PrunedObject{}, Builds: []int64{}, Uploads: []publish.PrunedUpload{
		{Key: "apps/demo/bundles/a.zip", Size: 3 << 20, Started: started},
		{Key: "apps/demo/bundles/b.zip", Size: 1 << 20, Started: started},
	}}
	var out strings.Builder
	printPrune(&out, res)
	if got, want := out.String(), "aborted 2 incomplete uploads of demo (4.0 MB), left by interrupted uploads\n"; got != want {
		t.Errorf("prune printed %q, want %q", got, want)
	}
	res.Uploads = res.Uploads[:1]
	out.Reset()
	printPrune(&out, res)
	if got, want := out.String(), "aborted 1 incomplete upload of demo (3.0 MB), left by interrupted uploads\n"; got != want {
		t.Errorf("prune printed %q, want %q", got, want)
	}
	res.DryRun = true
	out.Reset()
	printPrune(&out, res)
	for _, want := range []string{
		"would abort 1 incomplete upload of demo (3.0 MB)",
		"  apps/demo/bundles/a.zip  3.0 MB  (incomplete upload started 2026-03-01T12:00:00Z)\n",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("dry run printed:\n%s\nwant %q", out.String(), want)
		}
	}
	if strings.Contains(out.String(), "nothing to remove") {
		t.Errorf("dry run printed:\n%s\nwith incomplete uploads to abort, not nothing to remove", out.String())
	}
}

// A command stopped by Ctrl-C says so, and what state it left.
func TestInterruptedSaysSo(t *testing.T) {
	_, where := userSetup(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var out, errOut strings.Builder
	status := Execute(ctx, "v0", with(where, "upload", "app=demo", "dir=www"), IO{In: strings.NewReader(""), Out: &out, Err: &errOut})
	if status != exitInterrupted || !strings.Contains(errOut.String(), "interrupted") || strings.Contains(errOut.String(), "context canceled") {
		t.Fatalf("upload with a cancelled context: exit %d, stderr %q", status, errOut.String())
	}
}

// Network and file system errors read as a sentence and a next step,
// without the Go call that failed.
func TestSystemErrorsAreExplained(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want string
	}{
		{&url.Error{Op: "Get", URL: "http://tracker.example:8080/api/stats", Err: &net.OpError{Op: "dial", Net: "tcp", Err: &net.DNSError{Err: "no such host", Name: "tracker.example", IsNotFound: true}}}, "cannot reach tracker.example:8080: no such host"},
		{errors.Join(errors.New("file store"), &fs.PathError{Op: "mkdir", Path: "/srv/store/.tmp", Err: fs.ErrPermission}), "permission denied on /srv/store/.tmp"},
	} {
		msg, hint := errorParts(tc.err)
		if msg != tc.want || hint == "" || strings.Contains(msg, "dial") || strings.Contains(msg, "mkdir") {
			t.Errorf("errorParts(%v) = %q, %q; want %q and a hint", tc.err, msg, hint, tc.want)
		}
	}
}

// Ctrl-C at a prompt stops the command there: nothing typed after it is
// taken, nothing is published or saved.
func TestCtrlCAtAPromptStops(t *testing.T) {
	dir, _ := userSetup(t)
	t.Setenv("CI", "")
	home := filepath.Join(dir, "home")
	for _, args := range [][]string{{"upload", "app=demo"}, {"login", "profile=qa"}} {
		out, err := onTerminal(t, []string{"HOME=" + home}, func(tty io.Writer) {
			time.Sleep(300 * time.Millisecond) // the first prompt is up
			io.WriteString(tty, "\x03")
			time.Sleep(300 * time.Millisecond)
			io.WriteString(tty, "www\n")
		}, args...)
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() == exitOK || !strings.Contains(out, "interrupted") || strings.Contains(out, "published") || strings.Contains(out, "saved") {
			t.Errorf("deploy %q, Ctrl-C at the first prompt: %v\n%s", args, err, out)
		}
	}
	if entries, _ := os.ReadDir(home); len(entries) > 0 {
		t.Errorf("Ctrl-C at a prompt left %v in the home folder", entries)
	}
}

// A PostgreSQL database that cannot be reached is one line and exit 6:
// which host, and what to check in db=; never its password.
func TestServeUnreachableDatabase(t *testing.T) {
	_, where := userSetup(t)
	if status, _, errOut := run(t, with(where, "upload", "app=demo", "dir=www")); status != exitOK {
		t.Fatalf("upload: exit %d\n%s", status, errOut)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refused := ln.Addr().String()
	ln.Close()
	for _, tc := range []struct{ db, want string }{
		{"postgres://deploy:S3CRET@nohost.invalid/events", "deploy: cannot reach the database: no host named nohost.invalid was found; check the host in db="},
		{"postgres://deploy:S3CRET@" + refused + "/events?sslmode=prefer", "deploy: cannot reach the database at " + refused + ": the connection was refused; check the host and port in db="},
	} {
		status, out, errOut := run(t, with(where, "serve", "addr=127.0.0.1:0", "db="+tc.db))
		if status != exitUnavailable || !strings.HasPrefix(errOut, tc.want) || strings.Count(errOut, "\n") != 1 || strings.Contains(out+errOut, "S3CRET") {
			t.Errorf("serve db=%s: exit %d, stderr\n%s\nwant %d and one line starting %q", tc.db, status, errOut, exitUnavailable, tc.want)
		}
	}
}
