package tracker

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

// benchConc is the number of concurrent clients of the ingest benchmark.
const benchConc = 64

// load sends n requests from conc clients and returns requests per second
// and every request's latency. newReq makes request i.
func load(b *testing.B, client *http.Client, n, conc int, newReq func(i int) *http.Request) (float64, []time.Duration) {
	lat := make([]time.Duration, n)
	var next atomic.Int64
	var failed atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for range conc {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				t := time.Now()
				resp, err := client.Do(newReq(i))
				if err != nil {
					failed.Add(1)
					continue
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					failed.Add(1)
				}
				lat[i] = time.Since(t)
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	if failed.Load() > 0 {
		b.Fatalf("%d of %d requests failed", failed.Load(), n)
	}
	return float64(n) / elapsed.Seconds(), lat
}

// p99 is the 99th percentile of latencies, in milliseconds.
func p99(lat []time.Duration) float64 {
	slices.Sort(lat)
	return float64(lat[min(len(lat)-1, len(lat)*99/100)].Microseconds()) / 1000
}

func benchClient() *http.Client {
	return &http.Client{Transport: &http.Transport{MaxIdleConns: 512, MaxIdleConnsPerHost: 512, DisableCompression: true}}
}

// BenchmarkLatest compares GET /build/latest with a bare net/http handler
// that answers the same bytes, both over loopback HTTP in the same run. It
// reports both rates, their ratio and p99 latencies, and their ratio.
//
// devices=1000 sends 1000 device ids from one address with the rate limits
// set high enough not to refuse. devices=100000 is a real device mix: each
// request comes from one of 100,000 device ids and client addresses (in
// X-Forwarded-For, with TrustProxy) under the default rate limits, so the
// limiters hold as many buckets as they ever do. Its devices are known to
// the tracker, as in a tracker's steady state (and in a load generator
// that cycles through them): each checked once before the measure. With
// /new, every request measured comes from a device the tracker has never
// seen, whose first check stores a mark: the worst case, as when a fleet
// first meets a tracker.
func BenchmarkLatest(b *testing.B) {
	for _, bc := range []struct {
		devices, conc int
		new           bool
	}{{1000, 64, false}, {1000, 256, false}, {100000, 256, false}, {100000, 256, true}} {
		name := fmt.Sprintf("devices=%d/conns=%d", bc.devices, bc.conc)
		if bc.new {
			name += "/new"
		}
		b.Run(name, func(b *testing.B) { benchLatest(b, bc.devices, bc.conc, bc.new) })
	}
}

func benchLatest(b *testing.B, devices, conc int, fresh bool) {
	f := newFixture(b)
	f.publish("retailer", "production", "1.0.0")
	cfg := f.config(b)
	cfg.CacheTTL = DefaultCacheTTL
	cfg.Limits = Limits{DeviceRate: 1e9, DeviceBurst: 1e9, AddrRate: 1e9, AddrBurst: 1e9}
	if devices > 1000 {
		cfg.Limits, cfg.TrustProxy = Limits{}, true
	}
	// Access logs go to a file, as a deployed tracker's stderr goes to one
	// (or to journald's pipe), through the LogWriter that deploy serve uses.
	file, err := os.Create(filepath.Join(b.TempDir(), "tracker.log"))
	if err != nil {
		b.Fatal(err)
	}
	logs := NewLogWriter(file, 100*time.Millisecond)
	b.Cleanup(func() { logs.Close(); file.Close() }) // after the server stops: cleanups run last first
	cfg.Log = zerolog.New(logs).With().Timestamp().Logger()
	_, base := startServer(b, cfg)

	urls, addrs := make([]string, devices), make([]string, devices)
	for i := range urls {
		urls[i] = fmt.Sprintf("/build/latest?app=retailer&device=%08x-d9cb-469f-a165-70867728950e", i)
		addrs[i] = fmt.Sprintf("10.%d.%d.%d", i>>16&255, i>>8&255, i&255)
	}
	_, body := do(b, nil, "GET", base+urls[0], nil)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	bare := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		w.Write(body)
	})}
	go bare.Serve(ln)
	defer bare.Close()
	bareBase := "http://" + ln.Addr().String()

	client := benchClient()
	next := 1 // request 0 was the one above
	// get makes the count requests of one load; each load takes the next
	// devices in turn.
	get := func(base string, count int) func(int) *http.Request {
		off := next
		next += count
		return func(i int) *http.Request {
			i = (off + i) % devices
			req, _ := http.NewRequest("GET", base+urls[i], nil)
			if cfg.TrustProxy {
				req.Header.Set("X-Forwarded-For", addrs[i])
			}
			return req
		}
	}
	n := max(b.N, 2000)
	load(b, client, 1000, conc, get(bareBase, 1000)) // warm up connections
	if warm := 1000; fresh {
		load(b, client, warm, conc, get(base, warm))
	} else {
		warm = devices - 1 // every device checks once
		load(b, client, warm, conc, get(base, warm))
		next = 0
	}
	b.ResetTimer()
	// Alternate eighths so drift in machine load hits both alike; the
	// percentiles are of all the requests of each side.
	const rounds = 8
	rate, p99ms := sideBySide(rounds, func(side, _ int) (float64, []time.Duration) {
		return load(b, client, n/rounds, conc, get([]string{bareBase, base}[side], n/rounds))
	})
	bareRate, trackerRate, bareP99, trackerP99 := rate[0], rate[1], p99ms[0], p99ms[1]
	b.StopTimer()
	b.ReportMetric(trackerRate, "tracker_req/s")
	b.ReportMetric(bareRate, "bare_req/s")
	b.ReportMetric(trackerRate/bareRate, "ratio")
	b.ReportMetric(trackerP99, "tracker_p99_ms")
	b.ReportMetric(bareP99, "bare_p99_ms")
	b.ReportMetric(trackerP99/bareP99, "p99_ratio")
}

// sideBySide measures two sides in alternating rounds, so that drift in
// machine load hits both alike, and returns each side's mean rate and the
// p99 latency in milliseconds of all its requests.
func sideBySide(rounds int, measure func(side, round int) (float64, []time.Duration)) (rate, p99ms [2]float64) {
	var lat [2][]time.Duration
	for round := range rounds {
		for side := range 2 {
			r, l := measure(side, round)
			rate[side] += r / float64(rounds)
			lat[side] = append(lat[side], l...)
		}
	}
	return rate, [2]float64{p99(lat[0]), p99(lat[1])}
}

// BenchmarkEventIngest measures durable events per second through POST
// /capgo/{app}/stats from benchConc concurrent clients: each answer comes
// after its events are committed with synchronous=FULL.
func BenchmarkEventIngest(b *testing.B) {
	for _, per := range []int{1, 10} {
		b.Run(fmt.Sprintf("events_per_request=%d", per), func(b *testing.B) {
			f := newFixture(b)
			f.publish("retailer", "production", "1.0.0")
			_, base := startServer(b, f.config(b))
			n := max(b.N, 4000/per)
			b.ResetTimer()
			rate, lat := ingest(b, []string{base}, n, per, 0)
			b.StopTimer()
			b.ReportMetric(rate, "events/s")
			b.ReportMetric(p99(lat), "p99_ms")
		})
	}
}

// BenchmarkMetricsOverhead measures, in one run, what the request metrics
// (route lookup, counter and histogram) cost against the whole in-process
// answer to GET /build/latest that they are part of, and reports the share.
func BenchmarkMetricsOverhead(b *testing.B) {
	f := newFixture(b)
	f.publish("retailer", "production", "1.0.0")
	cfg := f.config(b)
	cfg.CacheTTL = time.Hour
	srv, err := New(cfg)
	if err != nil {
		b.Fatal(err)
	}
	defer srv.Close()
	req := httptest.NewRequest("GET", "/build/latest?app=retailer&device="+deviceA, nil)
	h := srv.Handler()
	n := max(b.N, 20000)
	b.ResetTimer()
	start := time.Now()
	for range n {
		h.ServeHTTP(httptest.NewRecorder(), req)
	}
	whole := time.Since(start)
	start = time.Now()
	for range n {
		srv.metrics.request(srv.route(req), http.StatusOK, time.Millisecond)
	}
	metrics := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64(whole.Nanoseconds())/float64(n), "request_ns")
	b.ReportMetric(float64(metrics.Nanoseconds())/float64(n), "metrics_ns")
	b.ReportMetric(float64(metrics)/float64(whole), "share")
}

// ingest posts n requests of per events each from benchConc clients,
// request i to bases[i%len(bases)], and returns events per second and the
// requests' latencies. Events of different calls differ by their seq.
func ingest(b *testing.B, bases []string, n, per, seq int) (float64, []time.Duration) {
	t0 := time.Now().UnixMilli() + int64(seq)*1e9
	post := func(i int) *http.Request {
		evs := make([]string, per)
		for j := range evs {
			k := i*per + j
			evs[j] = fmt.Sprintf(`{"device_id":"dev-%d","app_id":"com.x","action":"download_complete","version_name":"1.0.0","version_build":"1.0","platform":"android","plugin_version":"8.51.14","timestamp":%d}`, k%5000, t0+int64(k))
		}
		body := evs[0]
		if per > 1 {
			body = "[" + strings.Join(evs, ",") + "]"
		}
		req, _ := http.NewRequest("POST", bases[i%len(bases)]+"/capgo/retailer/stats", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		return req
	}
	rate, lat := load(b, benchClient(), n, benchConc, post)
	return rate * float64(per), lat
}
