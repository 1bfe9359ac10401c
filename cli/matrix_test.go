package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/creack/pty"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// goInternal matches what must never reach a user: panics, stack traces
// and Go type or package names.
var goInternal = regexp.MustCompile(`panic|goroutine|runtime error|\*[a-z0-9]+\.[A-Z]\w+|\b(strconv|fs|os|url|json|yaml|net|syscall|smithy)\.[A-Z]\w+|%!|<nil>`)

// commandPaths walks the command tree: every command and subcommand, so
// new commands are covered without changing this test.
func commandPaths() [][]string {
	var out [][]string
	var walk func(c *cobra.Command, path []string)
	walk = func(c *cobra.Command, path []string) {
		out = append(out, path)
		for _, sub := range c.Commands() {
			if sub.Name() != "help" && sub.Name() != "completion" {
				walk(sub, append(append([]string{}, path...), sub.Name()))
			}
		}
	}
	walk(newRoot("v0", discard), nil)
	return out
}

// badValues are command lines with wrong values for each of cmd's flags.
func badValues(cmd *cobra.Command, path []string) [][]string {
	out := [][]string{
		append(append([]string{}, path...), "nosuch=1"),
		append(append([]string{}, path...), "stray"),
		append(append([]string{}, path...), "--nosuch"),
	}
	cmd.Flags().VisitAll(func(f *pflag.Flag) {
		if f.Name == "help" {
			return
		}
		for _, v := range []string{"", "%zz", "maybe", "../../../x", "s3://", "-1"} {
			out = append(out, append(append([]string{}, path...), f.Name+"="+v))
		}
		out = append(out, append(append([]string{}, path...), "--"+f.Name))
	})
	return out
}

// isolate gives the test an empty home, configuration and project folder.
func isolate(t *testing.T) {
	t.Helper()
	dir := t.TempDir()
	t.Setenv("HOME", dir+"/home")
	t.Setenv("XDG_CONFIG_HOME", "")
	t.Setenv("XDG_DATA_HOME", "")
	t.Setenv("USER", "tester")
	t.Setenv("CI", "true")
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	t.Setenv("AWS_ACCESS_KEY_ID", "")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "")
	t.Setenv("AWS_PROFILE", "")
	t.Chdir(dir)
}

// run executes deploy in this process with stdin closed, turning a panic
// into a test failure.
func run(t *testing.T, args []string) (status int, stdout, stderr string) {
	t.Helper()
	os.Setenv("HOME", t.TempDir()) // a fresh home: nothing one run creates changes the next
	closed, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	closed.Close()
	var out, errb bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	func() {
		defer func() {
			if r := recover(); r != nil {
				t.Errorf("deploy %q panicked: %v", args, r)
			}
		}()
		status = Execute(ctx, "v0", args, IO{In: closed, Out: &out, Err: &errb})
	}()
	return status, out.String(), errb.String()
}

func checkClean(t *testing.T, args []string, outputs ...string) {
	t.Helper()
	for _, o := range outputs {
		if m := goInternal.FindString(o); m != "" {
			t.Errorf("deploy %q printed %q:\n%s", args, m, o)
		}
	}
}

// TestCommandMatrix runs every command with no arguments, --help, help,
// completion and bad values, and checks that none panics or prints Go
// internals, that usage errors exit 2, and that --json output is JSON.
func TestCommandMatrix(t *testing.T) {
	isolate(t)
	root := newRoot("v0", discard)
	for _, path := range commandPaths() {
		cmd, _, err := root.Find(path)
		if err != nil {
			t.Fatal(err)
		}
		name := strings.Join(append([]string{"deploy"}, path...), " ")
		t.Run(name, func(t *testing.T) {
			lines := [][]string{
				path,
				append(append([]string{}, path...), "--help"),
				append([]string{"help"}, path...),
				append(append([]string{"__complete"}, path...), ""),
				append(append([]string{"__complete"}, path...), "x"),
				append(append([]string{"__complete"}, path...), "a"),
				append(append([]string{"__complete"}, path...), "app="),
			}
			lines = append(lines, badValues(cmd, path)...)
			for _, args := range lines {
				status, out, errOut := run(t, args)
				checkClean(t, args, out, errOut)
				if status < 0 || status > exitUnavailable {
					t.Errorf("deploy %q exited %d", args, status)
				}
			}
			for _, args := range [][]string{append(append([]string{}, path...), "nosuch=1"), append(append([]string{}, path...), "stray")} {
				if runs(cmd) {
					if status, _, _ := run(t, args); status != exitUsage {
						t.Errorf("deploy %q exited %d, want %d (usage)", args, status, exitUsage)
					}
				}
			}
			if runs(cmd) {
				args := append(append([]string{}, path...), "--json")
				_, out, _ := run(t, args)
				if !json.Valid([]byte(out)) || json.NewDecoder(strings.NewReader(out)).Decode(new(any)) != nil {
					t.Errorf("deploy %q printed no single JSON document on stdout:\n%s", args, out)
				}
			}
		})
	}
}

// TestCommandMatrixTerminal runs every runnable command with no arguments
// on a pseudo-terminal, answering each prompt with an empty line and then
// end of input: prompts must end cleanly, without Go internals.
func TestCommandMatrixTerminal(t *testing.T) {
	isolate(t)
	t.Setenv("CI", "")
	root := newRoot("v0", discard)
	for _, path := range commandPaths() {
		cmd, _, _ := root.Find(path)
		if !runs(cmd) {
			continue
		}
		out, err := onTerminal(t, []string{"HOME=" + t.TempDir()}, func(tty io.Writer) {
			for range 10 {
				io.WriteString(tty, "\n")
				time.Sleep(20 * time.Millisecond)
			}
			io.WriteString(tty, "\x04")
		}, path...)
		checkClean(t, path, out)
		if ee, ok := err.(*exec.ExitError); ok && ee.ExitCode() > exitUnavailable || ok && ee.ExitCode() < 0 {
			t.Errorf("deploy %q on a terminal: %v\n%s", path, err, out)
		}
	}
}

// TestHelpMatchesCommands checks the help of every command: an example on
// each runnable command, value names that are types (a back-quoted word in
// a flag's usage becomes the value name), root key flags only where the
// root key signs, and no key= on revoke.
func TestHelpMatchesCommands(t *testing.T) {
	root := newRoot("v0", discard)
	signsWithRoot := map[string]bool{"deploy init": true, "deploy grant": true, "deploy revoke": true, "deploy acl apply": true, "deploy acl resign": true, "deploy upload": true, "deploy keys show": true}
	for _, path := range commandPaths() {
		cmd, _, _ := root.Find(path)
		if !runs(cmd) {
			continue
		}
		if cmd.Example == "" {
			t.Errorf("%s has no example", cmd.CommandPath())
		}
		cmd.Flags().VisitAll(func(f *pflag.Flag) {
			if name, _ := pflag.UnquoteUsage(f); name != "" && name != f.Value.Type() {
				t.Errorf("%s --%s shows the value name %q: a back-quoted word in its usage", cmd.CommandPath(), f.Name, name)
			}
		})
		f := cmd.Flags().Lookup("root_key_file")
		if has := f != nil && !f.Hidden; has != signsWithRoot[cmd.CommandPath()] {
			t.Errorf("%s: root_key_file listed = %v, want %v", cmd.CommandPath(), has, signsWithRoot[cmd.CommandPath()])
		}
	}
	if revoke, _, _ := root.Find([]string{"revoke"}); revoke.Flags().Lookup("key") != nil {
		t.Error("deploy revoke lists key=, which it does not use")
	}
}

// TestVersionSame checks that deploy version and deploy --version agree.
func TestVersionSame(t *testing.T) {
	isolate(t)
	_, a, _ := run(t, []string{"version"})
	_, b, _ := run(t, []string{"--version"})
	if a != b || a != "deploy v0\n" {
		t.Errorf("deploy version printed %q, deploy --version %q", a, b)
	}
	_, a, _ = run(t, []string{"version", "--json"})
	_, b, _ = run(t, []string{"--version", "--json"})
	var doc struct{ Version string }
	if err := json.Unmarshal([]byte(b), &doc); err != nil || a != b || doc.Version != "v0" {
		t.Errorf("deploy version --json printed %q, deploy --version --json %q", a, b)
	}
}

// TestExitCodesDocumented checks that the README's table lists every exit
// status with its code, as `deploy help exit-codes` does.
func TestExitCodesDocumented(t *testing.T) {
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	isolate(t)
	_, help, _ := run(t, []string{"help", "exit-codes"})
	for _, c := range exitCodes {
		if row := fmt.Sprintf("| %d | `%s` |", c.status, c.code); !strings.Contains(string(readme), row) {
			t.Errorf("README.md has no row %q", row)
		}
		if !regexp.MustCompile(fmt.Sprintf(`(?m)^\s+%d\s+%s\s`, c.status, c.code)).MatchString(help) {
			t.Errorf("deploy help exit-codes does not list %d %s:\n%s", c.status, c.code, help)
		}
	}
}

// onTerminal runs deploy with args on a pseudo-terminal, with env added
// to this process's, and returns all it printed there. typing, if not nil,
// writes to the terminal as a user would. deploy is killed after 30 s.
func onTerminal(t *testing.T, env []string, typing func(tty io.Writer), args ...string) (string, error) {
	t.Helper()
	c := exec.Command(os.Args[0], args...)
	c.Env = append(append(os.Environ(), "DEPLOY_TEST_AS_MAIN=1"), env...)
	tty, err := pty.Start(c)
	if err != nil {
		t.Fatal(err)
	}
	if typing != nil {
		go typing(tty)
	}
	done := make(chan []byte)
	go func() { b, _ := io.ReadAll(tty); done <- b }()
	timer := time.AfterFunc(30*time.Second, func() { c.Process.Kill() })
	err = c.Wait()
	timer.Stop()
	// Read to the end before closing: what deploy printed last may still
	// be on its way, and the read ends once deploy's side is closed.
	out := <-done
	tty.Close()
	return string(out), err
}
