package s3test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

func TestStart(t *testing.T) {
	srv := Start(t)
	ctx := context.Background()

	other := srv.NewBucket(t)
	if other.Bucket == srv.Bucket || other.Endpoint != srv.Endpoint {
		t.Fatalf("NewBucket = %+v, want a new bucket on the same server as %+v", other, srv)
	}
	for _, b := range []string{srv.Bucket, other.Bucket} {
		if _, err := srv.Client().HeadBucket(ctx, &s3.HeadBucketInput{Bucket: aws.String(b)}); err != nil {
			t.Fatalf("HeadBucket %s: %v", b, err)
		}
	}

	_, err := srv.Client().PutObject(ctx, &s3.PutObjectInput{
		Bucket: aws.String(srv.Bucket),
		Key:    aws.String("a/b.txt"),
		Body:   bytes.NewReader([]byte("hello")),
	})
	if err != nil {
		t.Fatal(err)
	}
	out, err := srv.Client().GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(srv.Bucket), Key: aws.String("a/b.txt")})
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(out.Body)
	out.Body.Close()
	if string(body) != "hello" {
		t.Fatalf("GetObject = %q, want hello", body)
	}
}

func TestURLAndEnv(t *testing.T) {
	s := &Server{Endpoint: "http://127.0.0.1:1234", AccessKey: "AK", SecretKey: "SK", Region: Region, Bucket: "b"}
	got := s.URL("p/q")
	want := "s3://b/p/q?region=us-east-1&endpoint=http://127.0.0.1:1234&path_style=true"
	if got != want {
		t.Fatalf("URL = %s, want %s", got, want)
	}
	u, err := url.Parse(got)
	if err != nil {
		t.Fatal(err)
	}
	if q := u.Query(); u.Host != "b" || u.Path != "/p/q" || q.Get("endpoint") != s.Endpoint || q.Get("path_style") != "true" {
		t.Fatalf("URL parses as host %q path %q query %v", u.Host, u.Path, q)
	}
	env := strings.Join(s.Env(), "\n")
	for _, kv := range []string{"AWS_ACCESS_KEY_ID=AK", "AWS_SECRET_ACCESS_KEY=SK"} {
		if !strings.Contains(env, kv) {
			t.Errorf("Env() lacks %s:\n%s", kv, env)
		}
	}
}

func TestFindBinaryHint(t *testing.T) {
	t.Setenv("VERSITYGW", "")
	t.Setenv("PATH", t.TempDir())
	t.Setenv("GOPATH", t.TempDir())
	t.Setenv("GOBIN", "")
	t.Setenv("HOME", t.TempDir())
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
	// With PATH emptied, "go env" and "go install" cannot run either;
	// findBinary must still fail with the install hint.
	_, err := findBinary()
	if err == nil || !strings.Contains(err.Error(), installHint) {
		t.Fatalf("findBinary() error = %v, want one containing %q", err, installHint)
	}

	t.Setenv("VERSITYGW", "/nonexistent/versitygw")
	if _, err := findBinary(); err == nil || !strings.Contains(err.Error(), "VERSITYGW=/nonexistent/versitygw") {
		t.Fatalf("findBinary() with a bad VERSITYGW: %v", err)
	}
}

// TestInstallOnce checks that concurrent callers build once, all get the
// binary, and a failed build leaves nothing behind for the next caller.
func TestInstallOnce(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "cache")
	if _, err := installOnce(dir, func(string) error { return errors.New("no network") }); err == nil || !strings.Contains(err.Error(), "no network") {
		t.Fatalf("installOnce with a failing build: %v", err)
	}
	var builds atomic.Int32
	install := func(gobin string) error {
		builds.Add(1)
		time.Sleep(100 * time.Millisecond) // let the others reach the lock
		return os.WriteFile(filepath.Join(gobin, exeName("versitygw")), []byte("binary"), 0o755)
	}
	var wg sync.WaitGroup
	paths := make([]string, 4)
	for i := range paths {
		wg.Go(func() {
			p, err := installOnce(dir, install)
			if err != nil {
				t.Error(err)
			}
			paths[i] = p
		})
	}
	wg.Wait()
	if n := builds.Load(); n != 1 {
		t.Fatalf("%d builds, want 1", n)
	}
	want := filepath.Join(dir, exeName("versitygw"))
	for _, p := range paths {
		if p != want {
			t.Fatalf("installOnce = %q, want %q", p, want)
		}
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), "build-") {
			t.Fatalf("temporary folder %s left in the cache", e.Name())
		}
	}
}
