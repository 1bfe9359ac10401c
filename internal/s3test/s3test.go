// Package s3test runs a real S3-compatible server, versitygw, for tests.
//
// [Start] launches versitygw with its posix backend on a loopback port and a
// temporary folder, creates a bucket, and stops the server when the test
// ends. Tests that need isolation take a fresh bucket with
// [Server.NewBucket]; tests that run the CLI as a subprocess pass
// [Server.Env] to it.
//
// The versitygw binary is found through $VERSITYGW, then $PATH, then
// $(go env GOPATH)/bin, then $(go env GOBIN), then the user cache folder
// ([os.UserCacheDir]/deploy/versitygw-v1.8.0). When it is in none of them,
// the first test that needs it builds it into that cache folder with
//
//	go install github.com/versity/versitygw/cmd/versitygw@v1.8.0
//
// under a file lock, so that test packages running in parallel build it once.
package s3test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/cartona/deploy/internal/lockfile"
)

// Fixed credentials of the server's root account.
const (
	AccessKey = "DEPLOYTESTACCESSKEY"
	SecretKey = "deploy-test-secret-key-not-a-real-secret"
	Region    = "us-east-1"
)

const (
	module       = "github.com/versity/versitygw/cmd/versitygw@v1.8.0"
	installHint  = "go install " + module
	healthPath   = "/health"
	startTimeout = 30 * time.Second
)

// Server is a running versitygw. Its fields are read-only.
type Server struct {
	Endpoint  string // base URL, such as http://127.0.0.1:39215
	AccessKey string
	SecretKey string
	Region    string
	Bucket    string // a bucket created for this Server value

	client *s3.Client
}

var bucketSeq atomic.Int64

// Start starts versitygw, creates a bucket, and registers a cleanup that
// stops the server. It fails the test (never skips it) when versitygw is not
// installed or does not start.
func Start(t testing.TB) *Server {
	t.Helper()
	bin, err := findBinary()
	if err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	var errs []error
	// The free port is found by binding and releasing it, so another process
	// may take it before versitygw binds; try a few ports before giving up.
	for range 3 {
		endpoint, err := launch(t, bin, root)
		if err == nil {
			s := &Server{Endpoint: endpoint, AccessKey: AccessKey, SecretKey: SecretKey, Region: Region}
			s.client = s3.New(s3.Options{
				Region:                     Region,
				BaseEndpoint:               aws.String(endpoint),
				UsePathStyle:               true,
				Credentials:                credentials.NewStaticCredentialsProvider(AccessKey, SecretKey, ""),
				RequestChecksumCalculation: aws.RequestChecksumCalculationWhenRequired,
				ResponseChecksumValidation: aws.ResponseChecksumValidationWhenRequired,
			})
			return s.NewBucket(t)
		}
		errs = append(errs, err)
	}
	t.Fatalf("s3test: versitygw (%s) did not start: %v", bin, errors.Join(errs...))
	return nil
}

// launch runs versitygw on a free loopback port and waits until it answers.
// On success the process is stopped at the test's cleanup.
func launch(t testing.TB, bin, root string) (string, error) {
	addr, err := freeAddr()
	if err != nil {
		return "", err
	}
	cmd := exec.Command(bin,
		"--port", addr,
		"--access", AccessKey,
		"--secret", SecretKey,
		"--region", Region,
		"--health", healthPath,
		"--quiet",
		"posix", root)
	out := new(syncBuffer)
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		return "", fmt.Errorf("start %s: %w", bin, err)
	}
	exited := make(chan struct{})
	go func() {
		cmd.Wait()
		close(exited)
	}()
	stop := func() {
		cmd.Process.Kill()
		<-exited
	}

	endpoint := "http://" + addr
	if err := waitHealthy(endpoint+healthPath, exited); err != nil {
		stop()
		return "", fmt.Errorf("%w; output: %s", err, strings.TrimSpace(out.String()))
	}
	t.Cleanup(func() {
		stop()
		if t.Failed() {
			t.Logf("s3test: versitygw output:\n%s", out.String())
		}
	})
	return endpoint, nil
}

// waitHealthy polls url until it answers 200, the process exits, or the
// start timeout passes.
func waitHealthy(url string, exited <-chan struct{}) error {
	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(startTimeout)
	for {
		resp, err := client.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("GET %s: %s", url, resp.Status)
		}
		select {
		case <-exited:
			return errors.New("versitygw exited before it was ready")
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not ready after %v: %w", startTimeout, err)
		}
	}
}

// NewBucket creates an empty bucket and returns a Server value that uses it.
func (s *Server) NewBucket(t testing.TB) *Server {
	t.Helper()
	name := fmt.Sprintf("deploy-test-%d", bucketSeq.Add(1))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := s.client.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(name)}); err != nil {
		t.Fatalf("s3test: create bucket %s: %v", name, err)
	}
	c := *s
	c.Bucket = name
	return &c
}

// Client returns an S3 client for the server, signed with the root
// credentials, for checks that go around the code under test.
func (s *Server) Client() *s3.Client { return s.client }

// URL returns the store URL of prefix in the server's bucket:
// s3://bucket/prefix?region=us-east-1&endpoint=http://127.0.0.1:PORT&path_style=true.
func (s *Server) URL(prefix string) string {
	return fmt.Sprintf("s3://%s/%s?region=%s&endpoint=%s&path_style=true",
		s.Bucket, strings.TrimPrefix(prefix, "/"), s.Region, s.Endpoint)
}

// Env returns the environment variables that give the AWS SDK's default
// credential chain the server's credentials, for a CLI run as a subprocess:
// append them to os.Environ().
func (s *Server) Env() []string {
	return []string{
		"AWS_ACCESS_KEY_ID=" + s.AccessKey,
		"AWS_SECRET_ACCESS_KEY=" + s.SecretKey,
		"AWS_SESSION_TOKEN=",
		"AWS_REGION=" + s.Region,
	}
}

// Setenv sets the variables of [Server.Env] in the test's own process, for
// code under test that loads the SDK's default configuration. Like
// t.Setenv, it cannot be used in parallel tests.
func (s *Server) Setenv(t testing.TB) {
	t.Helper()
	for _, kv := range s.Env() {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
}

// findBinary looks for versitygw in $VERSITYGW, $PATH, GOPATH/bin, GOBIN
// and the cache folder, and builds it into the cache folder when it is in
// none of them.
func findBinary() (string, error) {
	if p := os.Getenv("VERSITYGW"); p != "" {
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("s3test: VERSITYGW=%s: %w", p, err)
		}
		return p, nil
	}
	if p, err := exec.LookPath("versitygw"); err == nil {
		return p, nil
	}
	for _, dir := range goBinDirs() {
		p := filepath.Join(dir, exeName("versitygw"))
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	dir, err := cacheDir()
	if err == nil {
		var p string
		if p, err = installOnce(dir, goInstall); err == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("s3test: versitygw is not in $VERSITYGW, $PATH, GOPATH/bin or GOBIN, and building it failed: %v\n"+
		"the S3 tests need a real S3 server: install it with\n\t%s\nor set VERSITYGW=/path/to/versitygw", err, installHint)
}

// cacheDir is the folder the tests build versitygw into.
func cacheDir() (string, error) {
	d, err := os.UserCacheDir()
	if err != nil {
		return "", err
	}
	_, version, _ := strings.Cut(module, "@")
	return filepath.Join(d, "deploy", "versitygw-"+version), nil
}

// installOnce returns dir's versitygw, building it with install first if it
// is not there. A lock file in dir makes concurrent callers, in this process
// or others, wait for the one that builds. install writes into a temporary
// folder that is renamed into place, so a binary in dir is always complete.
func installOnce(dir string, install func(gobin string) error) (string, error) {
	bin := filepath.Join(dir, exeName("versitygw"))
	if _, err := os.Stat(bin); err == nil {
		return bin, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	unlock, err := lockfile.Lock(filepath.Join(dir, "lock"))
	if err != nil {
		return "", err
	}
	defer unlock()
	if _, err := os.Stat(bin); err == nil {
		return bin, nil // built by another test package while we waited
	}
	tmp, err := os.MkdirTemp(dir, "build-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp)
	if err := install(tmp); err != nil {
		return "", err
	}
	if err := os.Rename(filepath.Join(tmp, exeName("versitygw")), bin); err != nil {
		return "", err
	}
	return bin, nil
}

// goInstall builds versitygw into gobin, telling the user on stderr first:
// it takes a few minutes, once per machine.
func goInstall(gobin string) error {
	fmt.Fprintf(os.Stderr, "s3test: building the S3 test server once for this machine: %s (a few minutes)\n", installHint)
	cmd := exec.Command("go", "install", module)
	cmd.Env = append(os.Environ(), "GOBIN="+gobin, "GOOS=", "GOARCH=")
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s: %v\n%s", installHint, err, out)
	}
	return nil
}

// goBinDirs returns $(go env GOPATH)/bin and $(go env GOBIN), in that order.
func goBinDirs() []string {
	out, err := exec.Command("go", "env", "GOPATH", "GOBIN").Output()
	if err != nil {
		return nil
	}
	lines := strings.Split(strings.TrimRight(string(out), "\n"), "\n")
	var dirs []string
	if len(lines) > 0 && lines[0] != "" {
		// go install uses the first entry of GOPATH.
		dirs = append(dirs, filepath.Join(filepath.SplitList(lines[0])[0], "bin"))
	}
	if len(lines) > 1 && lines[1] != "" {
		dirs = append(dirs, lines[1])
	}
	return dirs
}

func exeName(name string) string {
	if runtime.GOOS == "windows" {
		return name + ".exe"
	}
	return name
}

// freeAddr returns a loopback address with a port that was free a moment ago.
func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// syncBuffer collects the server's output from two pipes.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
