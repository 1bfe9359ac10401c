package main

import (
	"bytes"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// A command stopped by Ctrl-C exits 130, as shells report a process a
// SIGINT ended, saying it was interrupted. The upload waits on an S3
// endpoint that accepts connections and never answers.
func TestInterruptExits130(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	www := t.TempDir()
	if err := os.WriteFile(filepath.Join(www, "index.html"), []byte("<html>notifyAppReady()</html>"), 0o644); err != nil {
		t.Fatal(err)
	}
	home := t.TempDir()
	cmd := exec.Command(buildDeploy(t), "upload", "app=demo", "dir="+www,
		"store=s3://bucket/p?region=us-east-1&endpoint=http://"+ln.Addr().String()+"&path_style=true",
		"root_key=ed25519:iojj3XQJ8ZX9UtstPLpdcspnCb8dlBIb83SIAbQPb1w=", "key_file="+filepath.Join(home, ".config/deploy/user.key"))
	cmd.Env = append(os.Environ(), "HOME="+home, "XDG_CONFIG_HOME=", "XDG_DATA_HOME=", "CI=true", "AWS_ACCESS_KEY_ID=x", "AWS_SECRET_ACCESS_KEY=y")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond) // waiting on the store by now
	cmd.Process.Signal(syscall.SIGINT)
	err = cmd.Wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 130 || !strings.Contains(stderr.String(), "interrupted") {
		t.Fatalf("upload stopped by SIGINT: %v, stderr %q; want exit 130 saying it was interrupted", err, stderr.String())
	}
}
