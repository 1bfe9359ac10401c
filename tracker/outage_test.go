package tracker

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cartona/deploy/internal/pgtest"
	"github.com/cartona/deploy/manifest"
	"github.com/rs/zerolog"
)

// cutter is a TCP proxy on a loopback port in front of a database server:
// cut drops every connection and refuses new ones, as a database that went
// down does; restore listens again on the same port.
type cutter struct {
	t      testing.TB
	addr   string // the proxy's
	target string

	mu    sync.Mutex
	ln    net.Listener
	conns map[net.Conn]bool
}

// newCutter proxies the host of the database URL dbURL and returns the
// proxy with dbURL rewritten to go through it.
func newCutter(t testing.TB, dbURL string) (*cutter, string) {
	t.Helper()
	u, err := url.Parse(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	c := &cutter{t: t, target: u.Host, conns: map[net.Conn]bool{}}
	c.listen("127.0.0.1:0")
	t.Cleanup(c.cut)
	u.Host = c.addr
	return c, u.String()
}

func (c *cutter) listen(addr string) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		c.t.Fatal(err)
	}
	c.mu.Lock()
	c.ln, c.addr = ln, ln.Addr().String()
	c.mu.Unlock()
	go func() {
		for {
			in, err := ln.Accept()
			if err != nil {
				return
			}
			out, err := net.Dial("tcp", c.target)
			if err != nil {
				in.Close()
				continue
			}
			c.mu.Lock()
			if c.ln != ln { // cut meanwhile
				c.mu.Unlock()
				in.Close()
				out.Close()
				return
			}
			c.conns[in], c.conns[out] = true, true
			c.mu.Unlock()
			go func() { io.Copy(out, in); out.Close(); in.Close() }()
			go func() { io.Copy(in, out); in.Close(); out.Close() }()
		}
	}()
}

func (c *cutter) cut() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ln != nil {
		c.ln.Close()
		c.ln = nil
	}
	for conn := range c.conns {
		conn.Close()
	}
	clear(c.conns)
}

func (c *cutter) restore() { c.listen(c.addr) }

// hang makes the database a black hole, as one whose packets are dropped:
// connections are taken and never answered.
func (c *cutter) hang() {
	c.cut()
	ln, err := net.Listen("tcp", c.addr)
	if err != nil {
		c.t.Fatal(err)
	}
	c.mu.Lock()
	c.ln = ln
	c.mu.Unlock()
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			c.mu.Lock()
			c.conns[conn] = true
			c.mu.Unlock()
		}
	}()
}

// TestDatabaseThatHangs: a pointer published while the database answers
// nothing is served; only the first refresh waits for the database to
// record its floor (at most the store timeout), the next ones no longer
// than the short timeout, and a device's failure lookup at most
// failedLookupTimeout, so update checks do not stall at every refresh.
func TestDatabaseThatHangs(t *testing.T) {
	f := newFixture(t)
	f.publish("retailer", "production", "1.0.0")
	db, dbURL := newCutter(t, pgtest.Database(t))
	cfg := f.config(t)
	cfg.State = openPostgres(t, dbURL)
	srv, base := startServer(t, cfg)
	srv.man.timeout, srv.man.floorTimeout = 3*time.Second, 100*time.Millisecond
	latest := base + "/build/latest?app=retailer&device=" + deviceA
	check := func(want string) time.Duration {
		t.Helper()
		start := time.Now()
		resp, body := do(t, nil, "GET", latest, nil)
		if resp.StatusCode != 200 || !strings.Contains(string(body), `"version":"`+want+`"`) {
			t.Fatalf("/build/latest: %s %s, want %s", resp.Status, body, want)
		}
		return time.Since(start)
	}
	check("1.0.0")
	db.hang()
	f.publish("retailer", "production", "1.0.1")
	time.Sleep(15 * time.Millisecond)
	check("1.0.1") // waits for the database once
	for range 3 {
		time.Sleep(15 * time.Millisecond) // a new cache refresh
		if took := check("1.0.1"); took > 2500*time.Millisecond {
			t.Fatalf("an update check after the database failed took %s, want well under the store timeout (3 s)", took)
		}
	}
	db.cut() // the database answers again, for the cleanup
	db.restore()
}

// TestDatabaseOutage stops the PostgreSQL database under a tracker: update
// checks of a channel whose pointer it verified and recorded go on being
// answered with the build from memory, while events, which must be
// stored, are refused; a pointer published during the outage is served
// and its floor recorded once the database is back.
func TestDatabaseOutage(t *testing.T) {
	f := newFixture(t)
	ref := f.publish("retailer", "production", "1.0.0")
	db, dbURL := newCutter(t, pgtest.Database(t))
	cfg := f.config(t)
	cfg.State, cfg.StatsToken = openPostgres(t, dbURL), "tok"
	var logged logBuffer
	cfg.Log = zerolog.New(&logged)
	_, base := startServer(t, cfg)
	latest := base + "/build/latest?app=retailer&device=" + deviceA
	updates, stats := base+"/capgo/retailer/updates", base+"/capgo/retailer/stats"

	check := func(when string, want manifest.BuildRef) {
		t.Helper()
		resp, body := do(t, nil, "GET", latest, nil)
		var seed struct{ Build struct{ ID string } }
		json.Unmarshal(body, &seed)
		if resp.StatusCode != 200 || seed.Build.ID != want.ID {
			t.Fatalf("%s: /build/latest answered %s %s, want 200 with %s", when, resp.Status, body, want.ID)
		}
		resp, body = do(t, nil, "POST", updates, mustJSON(t, pluginRequest(deviceB, "0.9.0", "0.9.0")))
		var raw map[string]any
		json.Unmarshal(body, &raw)
		if resp.StatusCode != 200 || raw["version"] != want.Version || raw["error"] != nil {
			t.Fatalf("%s: Capgo update answered %s %s, want version %s", when, resp.Status, body, want.Version)
		}
	}
	check("before the outage", ref)

	db.cut()
	for i := range 20 { // many cache refreshes (10 ms)
		time.Sleep(15 * time.Millisecond)
		check("during the outage", ref)
		if i == 0 {
			// The dashboard shows the channel served, whatever else it
			// cannot show.
			resp, body := do(t, nil, "GET", base+"/api/apps/retailer", nil, "Authorization", "Bearer tok")
			if resp.StatusCode == 200 && (!strings.Contains(string(body), `"build":{`) || strings.Contains(string(body), `"problem"`)) {
				t.Fatalf("the dashboard during the outage: %s %s, want the channel's build", resp.Status, body)
			}
			t.Logf("the dashboard's app during the outage: %s", resp.Status)
			resp, body = do(t, nil, "POST", stats, mustJSON(t, pluginEvent(deviceA, "download_complete", "1.0.0", time.Now().UnixMilli())))
			if resp.StatusCode == 200 && strings.Contains(string(body), `"ok"`) {
				t.Fatalf("an event during the outage was acknowledged: %s %s", resp.Status, body)
			}
		}
	}

	// Lookups of device failures that fail on every check are logged once.
	if n := strings.Count(logged.String(), "device failure lookup"); n != 1 {
		t.Errorf("%d log lines about failing device failure lookups in 20 checks, want 1 (then a summary at most every 10 s)", n)
	}

	// A new pointer during the outage is served, and remembered in memory:
	// the older one, replayed, is refused.
	old := f.get(manifest.LatestKey("retailer", "production"))
	next := f.publish("retailer", "production", "1.0.1")
	time.Sleep(15 * time.Millisecond)
	check("a new pointer during the outage", next)
	newer := f.get(manifest.LatestKey("retailer", "production"))
	f.put(manifest.LatestKey("retailer", "production"), old)
	time.Sleep(15 * time.Millisecond)
	if resp, body := do(t, nil, "GET", latest, nil); resp.StatusCode == 200 {
		t.Fatalf("a replayed older pointer during the outage: %s %s, want it refused", resp.Status, body)
	}
	f.put(manifest.LatestKey("retailer", "production"), newer)
	time.Sleep(15 * time.Millisecond)

	// Back: the new pointer's floor is recorded, so a restart refuses the
	// older pointer too.
	db.restore()
	deadline := time.Now().Add(10 * time.Second)
	for {
		check("after the outage", next)
		floors, err := openPostgres(t, dbURL).Floors(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if floors["retailer/production"] == f.seq["retailer/production"] {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("floors after the outage: %v, want retailer/production at %d", floors, f.seq["retailer/production"])
		}
		time.Sleep(20 * time.Millisecond)
	}
	if !strings.Contains(logged.String(), "device failure lookups succeed again") {
		t.Errorf("no log line says device failure lookups succeed again:\n%s", logged.String())
	}
	resp, body := do(t, nil, "POST", stats, mustJSON(t, pluginEvent(deviceA, "download_complete", "1.0.1", time.Now().UnixMilli())))
	if resp.StatusCode != 200 {
		t.Fatalf("an event after the outage: %s %s", resp.Status, body)
	}
}
