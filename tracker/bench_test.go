package tracker

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// benchConc is the number of concurrent clients of the ingest benchmark.
const benchConc = 64

// load sends n requests from conc clients and returns requests per second
// and the 99th percentile latency. newReq makes request i.
func load(b *testing.B, client *http.Client, n, conc int, newReq func(i int) *http.Request) (float64, time.Duration) {
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
	slices.Sort(lat)
	return float64(n) / elapsed.Seconds(), lat[min(n-1, n*99/100)]
}

func benchClient() *http.Client {
	return &http.Client{Transport: &http.Transport{MaxIdleConns: 512, MaxIdleConnsPerHost: 512, DisableCompression: true}}
}

// BenchmarkLatest compares GET /build/latest with a bare net/http handler
// that answers the same bytes, both over loopback HTTP in the same run, from
// 64 and 256 concurrent connections and 1000 devices. It reports both rates,
// their ratio and p99 latencies. Rate limits are on, set high enough not to
// refuse.
func BenchmarkLatest(b *testing.B) {
	for _, conc := range []int{64, 256} {
		b.Run(fmt.Sprintf("conns=%d", conc), func(b *testing.B) { benchLatest(b, conc) })
	}
}

func benchLatest(b *testing.B, conc int) {
	f := newFixture(b)
	f.publish("retailer", "production", "1.0.0")
	cfg := f.config(b)
	cfg.CacheTTL = DefaultCacheTTL
	cfg.Limits = Limits{DeviceRate: 1e9, DeviceBurst: 1e9, AddrRate: 1e9, AddrBurst: 1e9}
	_, base := startServer(b, cfg)

	urls := make([]string, 1000)
	for i := range urls {
		urls[i] = fmt.Sprintf("/build/latest?app=retailer&device=%08x-d9cb-469f-a165-70867728950e", i)
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
	get := func(base string) func(int) *http.Request {
		return func(i int) *http.Request {
			req, _ := http.NewRequest("GET", base+urls[i%len(urls)], nil)
			return req
		}
	}
	n := max(b.N, 2000)
	load(b, client, 1000, conc, get(bareBase)) // warm up connections
	load(b, client, 1000, conc, get(base))
	b.ResetTimer()
	rate, p99 := sideBySide(func(side, _ int) (float64, time.Duration) {
		return load(b, client, n/2, conc, get([]string{bareBase, base}[side]))
	})
	bareRate, trackerRate, bareP99, trackerP99 := rate[0], rate[1], p99[0], p99[1]
	b.StopTimer()
	b.ReportMetric(trackerRate, "tracker_req/s")
	b.ReportMetric(bareRate, "bare_req/s")
	b.ReportMetric(trackerRate/bareRate, "ratio")
	b.ReportMetric(float64(trackerP99.Microseconds())/1000, "tracker_p99_ms")
	b.ReportMetric(float64(bareP99.Microseconds())/1000, "bare_p99_ms")
	b.ReportMetric(float64(trackerP99)/float64(bareP99), "p99_ratio")
}

// sideBySide measures two sides in alternating halves, so that drift in
// machine load hits both alike, and returns each side's mean rate and
// highest p99 latency.
func sideBySide(measure func(side, half int) (float64, time.Duration)) (rate [2]float64, p99 [2]time.Duration) {
	for half := range 2 {
		for side := range 2 {
			r, p := measure(side, half)
			rate[side] += r / 2
			p99[side] = max(p99[side], p)
		}
	}
	return rate, p99
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
			rate, p99 := ingest(b, []string{base}, n, per, 0)
			b.StopTimer()
			b.ReportMetric(rate, "events/s")
			b.ReportMetric(float64(p99.Microseconds())/1000, "p99_ms")
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
// p99 latency. Events of different calls differ by their seq.
func ingest(b *testing.B, bases []string, n, per, seq int) (float64, time.Duration) {
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
	rate, p99 := load(b, benchClient(), n, benchConc, post)
	return rate * float64(per), p99
}
