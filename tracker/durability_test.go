package tracker

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"database/sql"
	"fmt"
	"io"
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

	"github.com/rs/zerolog"

	"github.com/cartona/deploy/internal/pgtest"
	"github.com/cartona/deploy/manifest"
	"github.com/cartona/deploy/state"
	"github.com/cartona/deploy/state/sqlite"
	"github.com/cartona/deploy/store/file"
)

// childEnv makes the test binary run a tracker instead of the tests: the
// durability test starts one, kills it with SIGKILL and starts another.
const childEnv = "TRACKER_TEST_CHILD"

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) != "" {
		if err := runChild(); err != nil {
			fmt.Fprintln(os.Stderr, "child tracker:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(pgtest.Main(m))
}

// runChild serves a tracker on a loopback port it prints as "LISTEN addr".
func runChild() error {
	st, err := file.Open(os.Getenv("TRACKER_TEST_STORE"))
	if err != nil {
		return err
	}
	root, err := manifest.ParsePublicKey(os.Getenv("TRACKER_TEST_ROOT"))
	if err != nil {
		return err
	}
	db, err := sqlite.Open(os.Getenv("TRACKER_TEST_DB"), state.Options{Log: zerolog.New(io.Discard)})
	if err != nil {
		return err
	}
	srv, err := New(Config{Store: st, Trust: manifest.Trust{Roots: []ed25519.PublicKey{root}}, State: db,
		StatsToken: "tok", Log: zerolog.New(io.Discard), Limits: Limits{DeviceRate: -1, AddrRate: -1}})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	fmt.Printf("LISTEN %s\n", ln.Addr())
	return srv.Serve(context.Background(), ln)
}

func startChild(t *testing.T, f *fixture, db string) (*exec.Cmd, string) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"=1", "TRACKER_TEST_STORE="+f.dir, "TRACKER_TEST_DB="+db,
		"TRACKER_TEST_ROOT="+manifest.FormatPublicKey(manifest.Public(f.root)))
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if a, ok := strings.CutPrefix(sc.Text(), "LISTEN "); ok {
				addr <- a
			}
		}
	}()
	select {
	case a := <-addr:
		return cmd, "http://" + a
	case <-time.After(20 * time.Second):
		t.Fatal("child tracker did not start")
	}
	return nil, ""
}

// TestEventsSurviveKill sends events from concurrent clients, kills the
// tracker with SIGKILL midway, checks that every acknowledged event is in
// the database, restarts it on the same database, resends everything (as
// plugins do with unacknowledged and lost answers) and expects each event
// counted exactly once.
func TestEventsSurviveKill(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("needs SIGKILL")
	}
	f := newFixture(t)
	f.publish("retailer", "production", "1.0.0")
	db := filepath.Join(t.TempDir(), "events.db")
	cmd, base := startChild(t, f, db)

	const n = 1200
	t0 := time.Now().UnixMilli()
	ev := func(i int) map[string]any {
		return pluginEvent(fmt.Sprintf("device-%d", i%37), "download_fail", "1.0.0", t0+int64(i))
	}
	// Batches of 1 to 4 events; a batch of one is sent as an object.
	var batches [][]int
	for i := 0; i < n; {
		k := min(1+i%4, n-i)
		b := make([]int, k)
		for j := range b {
			b[j] = i + j
		}
		batches = append(batches, b)
		i += k
	}
	body := func(b []int) []byte {
		if len(b) == 1 {
			return mustJSON(t, ev(b[0]))
		}
		evs := make([]any, len(b))
		for j, i := range b {
			evs[j] = ev(i)
		}
		return mustJSON(t, evs)
	}
	client := &http.Client{Timeout: 5 * time.Second}
	send := func(base string, b []int) bool {
		resp, err := client.Post(base+"/capgo/retailer/stats", "application/json", strings.NewReader(string(body(b))))
		if err != nil {
			return false
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode == 200
	}

	var mu sync.Mutex
	acked := map[int64]bool{}
	var ackedN atomic.Int32
	var killOnce sync.Once
	work := make(chan []int)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for b := range work {
				if send(base, b) {
					mu.Lock()
					for _, i := range b {
						acked[t0+int64(i)] = true
					}
					mu.Unlock()
					if ackedN.Add(int32(len(b))) >= n/2 {
						killOnce.Do(func() { cmd.Process.Signal(os.Kill) })
					}
				}
			}
		})
	}
	for _, b := range batches {
		work <- b
	}
	close(work)
	wg.Wait()
	cmd.Wait()
	if len(acked) < n/2 || len(acked) == n {
		t.Fatalf("%d of %d events acknowledged; the kill should land midway", len(acked), n)
	}

	// Every acknowledged event is on disk.
	sdb, err := sql.Open("sqlite", db)
	if err != nil {
		t.Fatal(err)
	}
	rows, err := sdb.Query(`SELECT ts FROM events WHERE action = 'download_fail'`)
	if err != nil {
		t.Fatal(err)
	}
	stored := map[int64]bool{}
	for rows.Next() {
		var ts int64
		rows.Scan(&ts)
		stored[ts] = true
	}
	rows.Close()
	sdb.Close()
	for ts := range acked {
		if !stored[ts] {
			t.Fatalf("acknowledged event %d is not in the database after SIGKILL", ts)
		}
	}
	t.Logf("%d events acknowledged before SIGKILL, %d on disk", len(acked), len(stored))

	// Restart and resend everything.
	_, base = startChild(t, f, db)
	for _, b := range batches {
		if !send(base, b) {
			t.Fatal("resend after restart failed")
		}
	}
	st, err := GetStats(context.Background(), nil, base, "tok", "retailer")
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Builds) != 1 || st.Builds[0].DownloadsFailed != n || st.Builds[0].Devices != 37 {
		t.Fatalf("stats after restart: %+v; want %d failed downloads from 37 devices", st.Builds, n)
	}
}

// TestGracefulShutdown lets a request in flight finish when Serve's
// context ends, and flushes queued events before Serve returns.
func TestGracefulShutdown(t *testing.T) {
	f := newFixture(t)
	f.publish("retailer", "production", "1.0.0")
	f.publish("retailer", "beta", "1.0.1")
	cfg := f.config(t)
	db := filepath.Join(t.TempDir(), "state.db")
	cfg.CacheTTL, cfg.State = time.Minute, openState(t, db)
	cs := &countingStore{Store: f.store}
	cfg.Store = cs
	srv, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	base := "http://" + ln.Addr().String()
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ctx, ln) }()

	const m = 300 // update checks from distinct devices: queued, not awaited
	for i := range m {
		resp, _ := do(t, nil, "GET", fmt.Sprintf("%s/build/latest?app=retailer&device=d%d", base, i), nil)
		if resp.StatusCode != 200 {
			t.Fatal(resp.Status)
		}
	}
	cs.delay.Store(int64(300 * time.Millisecond))
	slow := make(chan int, 1)
	go func() { // beta is not cached yet: its store read is slow
		resp, err := http.Get(base + "/build/latest?app=retailer&channel=beta&device=last")
		if err != nil {
			slow <- 0
			return
		}
		resp.Body.Close()
		slow <- resp.StatusCode
	}()
	for cs.latestReads.Load() < 2 { // the slow request is in its store read
		time.Sleep(time.Millisecond)
	}
	cancel()
	if code := <-slow; code != 200 {
		t.Errorf("request in flight at shutdown: %d, want 200", code)
	}
	if err := <-served; err != nil {
		t.Fatal(err)
	}
	if err := srv.Close(); err != nil {
		t.Fatal(err)
	}

	cfg.State = openState(t, db)
	srv2, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer srv2.Close()
	st, err := srv2.stats(context.Background(), "retailer")
	if err != nil {
		t.Fatal(err)
	}
	checks := int64(0)
	for _, b := range st {
		checks += b.Checks
	}
	if len(st) != 2 || checks != m+1 {
		t.Errorf("after shutdown: %+v, want %d checks", st, m+1)
	}
}
