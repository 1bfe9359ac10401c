// Package pgtest runs a real PostgreSQL server for tests: Debian's
// binaries, a fresh cluster in a temporary folder, listening on a free
// loopback port, one server per test binary, started by the first test
// that asks for a database. A test binary's TestMain calls [Main] (which
// stops it at exit); tests call [Database] for an empty database of their
// own.
package pgtest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// Server is a running PostgreSQL cluster.
type Server struct {
	bin, dir string
	port     int
	asUser   []string // the command prefix that drops root privileges, if any
}

var (
	mu      sync.Mutex
	main    bool
	shared  *Server
	started error
	nextDB  atomic.Int64
)

// Runner is what TestMain runs: *testing.M.
type Runner interface{ Run() int }

// Main runs the tests and then stops the shared server if a test started
// it.
func Main(m Runner) int {
	mu.Lock()
	main = true
	mu.Unlock()
	code := m.Run()
	mu.Lock()
	defer mu.Unlock()
	if shared != nil {
		shared.Stop()
	}
	return code
}

// Wrap returns a Runner that runs m with Main, for testscript.Main.
func Wrap(m Runner) Runner { return wrapped{m} }

type wrapped struct{ m Runner }

func (w wrapped) Run() int { return Main(w.m) }

// server starts the shared server once. Without PostgreSQL's binaries it
// fails with the way to install them.
func server(t testing.TB) *Server {
	t.Helper()
	mu.Lock()
	defer mu.Unlock()
	if !main {
		t.Fatal("pgtest: call pgtest.Main from TestMain, which stops the server")
	}
	if shared == nil && started == nil {
		shared, started = Start()
	}
	if started != nil {
		t.Fatalf("pgtest: %v", started)
	}
	return shared
}

// Database creates an empty database on the shared server and returns its
// URL; it is dropped at the end of the test.
func Database(t testing.TB) string {
	t.Helper()
	shared := server(t)
	name := fmt.Sprintf("t%d_%d", os.Getpid(), nextDB.Add(1))
	ctx := context.Background()
	if err := shared.exec(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { shared.exec(ctx, "DROP DATABASE "+name+" WITH (FORCE)") })
	return shared.URL(name)
}

// Exec runs sql as the superuser on the shared server's postgres
// database, as an administrator would.
func Exec(t testing.TB, sql string) {
	t.Helper()
	if err := server(t).exec(context.Background(), sql); err != nil {
		t.Fatal(err)
	}
}

// URL is the connection URL of database name.
func (s *Server) URL(name string) string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", s.port, name)
}

func (s *Server) exec(ctx context.Context, sql string) error {
	c, err := pgx.Connect(ctx, s.URL("postgres"))
	if err != nil {
		return err
	}
	defer c.Close(ctx)
	_, err = c.Exec(ctx, sql)
	return err
}

// binDir finds the newest /usr/lib/postgresql/*/bin with initdb.
func binDir() (string, error) {
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool { return version(dirs[i]) > version(dirs[j]) })
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "initdb")); err == nil {
			return d, nil
		}
	}
	return "", errors.New("PostgreSQL's server binaries are not installed (no /usr/lib/postgresql/*/bin/initdb); install them with `apt-get install postgresql`")
}

func version(binDir string) int {
	v, _ := strconv.Atoi(filepath.Base(filepath.Dir(binDir)))
	return v
}

// Start initializes a cluster in a new temporary folder and starts it.
func Start() (*Server, error) {
	bin, err := binDir()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "pgtest-")
	if err != nil {
		return nil, err
	}
	s := &Server{bin: bin, dir: dir}
	if os.Geteuid() == 0 { // PostgreSQL refuses to run as root
		const nobody = 65534
		if err := os.Chown(dir, nobody, nobody); err != nil {
			return nil, err
		}
		s.asUser = []string{"setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--"}
	}
	if s.port, err = freePort(); err != nil {
		return nil, err
	}
	if err := s.run("initdb", "-D", s.data(), "-U", "postgres", "-A", "trust", "--no-sync", "-E", "UTF8", "--locale=C"); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	opts := fmt.Sprintf("-c listen_addresses=127.0.0.1 -p %d -k %s -c max_connections=200", s.port, dir)
	if err := s.run("pg_ctl", "-D", s.data(), "-o", opts, "-l", filepath.Join(dir, "log"), "-w", "-t", "60", "start"); err != nil {
		log, _ := os.ReadFile(filepath.Join(dir, "log"))
		os.RemoveAll(dir)
		return nil, fmt.Errorf("%w\n%s", err, log)
	}
	return s, nil
}

// Stop stops the server and removes its folder.
func (s *Server) Stop() error {
	err := s.run("pg_ctl", "-D", s.data(), "-m", "immediate", "-w", "stop")
	os.RemoveAll(s.dir)
	return err
}

func (s *Server) data() string { return filepath.Join(s.dir, "data") }

// run runs one of PostgreSQL's programs, as nobody when running as root.
func (s *Server) run(prog string, args ...string) error {
	argv := append(append(append([]string{}, s.asUser...), filepath.Join(s.bin, prog)), args...)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Dir = s.dir
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("%s: %w\n%s", prog, err, out)
	}
	return nil
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}
