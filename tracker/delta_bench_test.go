package tracker

import (
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
)

// BenchmarkManifestAnswer compares update checks answered with the file
// manifest of a 1,500-file build (gzip, as the plugin's HTTP clients accept)
// with a bare net/http handler answering the same bytes, both over loopback
// HTTP in the same run, from 64 connections and 1,000 devices. It reports
// both rates, their ratio and the answer's size.
func BenchmarkManifestAnswer(b *testing.B) {
	f := newFixture(b)
	tree := map[string]string{"index.html": "<!doctype html><title>app</title>"}
	for i := range 1500 {
		tree[fmt.Sprintf("chunk-%04d.js", i)] = strings.Repeat(fmt.Sprintf("export const c%d = %d;\n", i, i*i), 60)
	}
	f.publishFiles("retailer", "production", "1.0.0", tree)
	base, _ := startCDN(b, f)
	cfg := f.config(b)
	cfg.CDN, cfg.CacheTTL = base, DefaultCacheTTL
	cfg.Limits = Limits{DeviceRate: 1e9, DeviceBurst: 1e9, AddrRate: 1e9, AddrBurst: 1e9}
	_, tracker := startServer(b, cfg)

	bodies := make([]string, 1000)
	for i := range bodies {
		bodies[i] = string(mustJSON(b, pluginRequest(fmt.Sprintf("%08x-d9cb-469f-a165-70867728950e", i), "builtin", "1.0.0")))
	}
	resp, answer := do(b, nil, "POST", tracker+"/capgo/retailer/updates", []byte(bodies[0]), "Accept-Encoding", "gzip")
	if resp.Header.Get("Content-Encoding") != "gzip" || resp.StatusCode != 200 {
		b.Fatalf("answer: %s %v", resp.Status, resp.Header)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	bare := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		w.Header().Set("Content-Encoding", "gzip")
		w.Write(answer)
	})}
	go bare.Serve(ln)
	defer bare.Close()
	bareURL := "http://" + ln.Addr().String() + "/capgo/retailer/updates"

	client := benchClient()
	post := func(url string) func(int) *http.Request {
		return func(i int) *http.Request {
			req, _ := http.NewRequest("POST", url, strings.NewReader(bodies[i%len(bodies)]))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Accept-Encoding", "gzip")
			return req
		}
	}
	updates := tracker + "/capgo/retailer/updates"
	const rounds = 8
	n := max(b.N, 4000) / rounds
	load(b, client, 1000, 64, post(bareURL)) // warm up connections
	load(b, client, 1000, 64, post(updates))
	b.ResetTimer()
	// Many short alternating rounds, each pair in turn order, so that drift
	// in the load of a shared machine hits both alike.
	var bareRate, trackerRate float64
	for i := range rounds {
		urls := []string{bareURL, updates}
		if i%2 == 1 {
			urls[0], urls[1] = urls[1], urls[0]
		}
		for _, u := range urls {
			r, _ := load(b, client, n, 64, post(u))
			if u == bareURL {
				bareRate += r / rounds
			} else {
				trackerRate += r / rounds
			}
		}
	}
	b.StopTimer()
	b.ReportMetric(trackerRate, "tracker_req/s")
	b.ReportMetric(bareRate, "bare_req/s")
	b.ReportMetric(trackerRate/bareRate, "ratio")
	b.ReportMetric(float64(len(answer)), "answer_bytes")
}
