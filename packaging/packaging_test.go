// Package packaging holds what the .deb and .rpm install besides the
// binary (see nfpms in .goreleaser.yaml): the systemd unit of the tracker,
// its environment file and the maintainer scripts. The tests check them.
package packaging

import (
	"bytes"
	"context"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/cartona/deploy/cli"
)

const unit = "deploy-tracker.service"

// systemdAnalyze finds systemd-analyze, failing with an install hint.
func systemdAnalyze(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Fatal("systemd-analyze is not installed; it checks the tracker's systemd unit. Install it with `apt-get install systemd` (Debian, Ubuntu) or `dnf install systemd` (Fedora, RHEL)")
	}
	return p
}

// installRoot is a file system root for systemd-analyze --root: the host's
// system units (the targets the unit depends on), the unit as packaged,
// and an executable at the unit's ExecStart path standing in for deploy,
// which systemd-analyze only checks is there.
func installRoot(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	units := filepath.Join(root, "usr/lib/systemd/system")
	var host string
	for _, d := range []string{"/usr/lib/systemd/system", "/lib/systemd/system"} {
		if _, err := os.Stat(filepath.Join(d, "sysinit.target")); err == nil {
			host = d
			break
		}
	}
	if host == "" {
		t.Fatal("no systemd units on this machine (sysinit.target); install them with `apt-get install systemd`")
	}
	copyTree(t, host, units)
	if err := os.Symlink("usr/lib", filepath.Join(root, "lib")); err != nil { // merged /usr, for absolute links
		t.Fatal(err)
	}
	data, err := os.ReadFile(unit)
	if err != nil {
		t.Fatal(err)
	}
	put(t, filepath.Join(units, unit), data, 0o644)
	put(t, filepath.Join(root, "usr/bin/deploy"), []byte("#!/bin/sh\n"), 0o755)
	return root
}

// copyTree copies the folder from to to, symbolic links as links.
func copyTree(t *testing.T, from, to string) {
	t.Helper()
	err := filepath.WalkDir(from, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(from, p)
		dst := filepath.Join(to, rel)
		switch {
		case d.IsDir():
			return os.MkdirAll(dst, 0o755)
		case d.Type()&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			return os.Symlink(target, dst)
		case d.Type().IsRegular():
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			return os.WriteFile(dst, data, 0o644)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func put(t *testing.T, path string, data []byte, mode fs.FileMode) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, mode); err != nil {
		t.Fatal(err)
	}
}

// TestUnitVerifies runs `systemd-analyze verify` on the unit. It exits 0
// on unknown keys and bad values, only warning, so any warning fails too.
func TestUnitVerifies(t *testing.T) {
	cmd := exec.Command(systemdAnalyze(t), "verify", "--man=no", "--root="+installRoot(t), unit)
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stderr, &stderr
	if err := cmd.Run(); err != nil || stderr.Len() > 0 {
		t.Fatalf("systemd-analyze verify %s: %v\n%s", unit, err, stderr.String())
	}
}

// TestUnitHardened: systemd's own review of the unit's sandbox rates its
// exposure at most 2.0 of 10, so a hardening option dropped or weakened
// fails here.
func TestUnitHardened(t *testing.T) {
	cmd := exec.Command(systemdAnalyze(t), "security", "--offline=yes", "--threshold=20", "--no-pager", "--root="+installRoot(t), unit)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("systemd-analyze security %s: %v\n%s", unit, err, out)
	}
}

// TestSettingsAreParameters: every DEPLOY_ variable the unit and the
// environment file name is a parameter of `deploy serve`; viper would
// ignore a misspelt one without a word.
func TestSettingsAreParameters(t *testing.T) {
	var help bytes.Buffer
	if code := cli.Execute(context.Background(), "test", []string{"serve", "--help"}, cli.IO{In: strings.NewReader(""), Out: &help, Err: &help}); code != 0 {
		t.Fatalf("deploy serve --help: exit %d\n%s", code, help.String())
	}
	params := map[string]bool{}
	for _, m := range regexp.MustCompile(`--([a-z_]+)`).FindAllStringSubmatch(help.String(), -1) {
		params[m[1]] = true
	}
	seen := 0
	for _, file := range []string{unit, "tracker.env"} {
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range regexp.MustCompile(`(?m)\bDEPLOY_([A-Z_]+)=`).FindAllStringSubmatch(string(data), -1) {
			seen++
			if !params[strings.ToLower(m[1])] {
				t.Errorf("%s sets DEPLOY_%s, but deploy serve has no parameter %s", file, m[1], strings.ToLower(m[1]))
			}
		}
	}
	if seen < 10 {
		t.Errorf("found %d DEPLOY_ settings in %s and tracker.env, want every parameter an operator sets", seen, unit)
	}
}

// TestScriptsParse: the maintainer scripts are valid POSIX shell.
func TestScriptsParse(t *testing.T) {
	for _, s := range []string{"postinstall.sh", "preremove.sh", "postremove.sh"} {
		if out, err := exec.Command("sh", "-n", s).CombinedOutput(); err != nil {
			t.Errorf("sh -n %s: %v\n%s", s, err, out)
		}
	}
}
