package tracker

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/cartona/deploy/internal/pgtest"
	"github.com/cartona/deploy/state"
	"github.com/cartona/deploy/state/postgres"
)

// openPostgres opens a State on the PostgreSQL database at url, closed at
// the end of the test unless a Server closed it before.
func openPostgres(t testing.TB, url string) state.State {
	t.Helper()
	st, err := postgres.Open(context.Background(), url, state.Options{Log: zerolog.New(io.Discard)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// BenchmarkIngestPostgres measures durable events per second through two
// trackers sharing one PostgreSQL database, requests alternating between
// them, against one tracker on SQLite in the same run (halves alternated).
func BenchmarkIngestPostgres(b *testing.B) {
	for _, per := range []int{1, 10} {
		b.Run(fmt.Sprintf("events_per_request=%d", per), func(b *testing.B) {
			f := newFixture(b)
			f.publish("retailer", "production", "1.0.0")
			_, lite := startServer(b, f.config(b))
			url := pgtest.Database(b)
			var pg []string
			for range 2 {
				cfg := f.config(b)
				cfg.State = openPostgres(b, url)
				_, base := startServer(b, cfg)
				pg = append(pg, base)
			}
			n := max(b.N, 8000/per)
			ingest(b, pg, 500, per, 0) // warm up connections
			ingest(b, []string{lite}, 500, per, 0)
			b.ResetTimer()
			rate, _ := sideBySide(2, func(side, half int) (float64, []time.Duration) {
				return ingest(b, [][]string{pg, {lite}}[side], n/2, per, half+1)
			})
			pgRate, liteRate := rate[0], rate[1]
			b.StopTimer()
			b.ReportMetric(pgRate, "postgres_2_trackers_events/s")
			b.ReportMetric(liteRate, "sqlite_events/s")
			b.ReportMetric(pgRate/liteRate, "ratio")
		})
	}
}

// BenchmarkLatestPostgres compares GET /build/latest through a tracker on
// PostgreSQL with the same tracker on SQLite, in the same run, from 64
// concurrent connections and 1000 devices.
func BenchmarkLatestPostgres(b *testing.B) {
	f := newFixture(b)
	f.publish("retailer", "production", "1.0.0")
	limits := Limits{DeviceRate: 1e9, DeviceBurst: 1e9, AddrRate: 1e9, AddrBurst: 1e9}
	cfg := f.config(b)
	cfg.CacheTTL, cfg.Limits = DefaultCacheTTL, limits
	_, lite := startServer(b, cfg)
	cfg = f.config(b)
	cfg.CacheTTL, cfg.Limits, cfg.State = DefaultCacheTTL, limits, openPostgres(b, pgtest.Database(b))
	_, pg := startServer(b, cfg)
	get := func(base string) func(int) *http.Request {
		return func(i int) *http.Request {
			req, _ := http.NewRequest("GET", fmt.Sprintf("%s/build/latest?app=retailer&device=%08x-d9cb-469f-a165-70867728950e", base, i%1000), nil)
			return req
		}
	}
	client := benchClient()
	n := max(b.N, 4000)
	load(b, client, 1000, 64, get(lite))
	load(b, client, 1000, 64, get(pg))
	b.ResetTimer()
	rate, p99ms := sideBySide(2, func(side, _ int) (float64, []time.Duration) {
		return load(b, client, n/2, 64, get([]string{lite, pg}[side]))
	})
	liteRate, pgRate, pgP99 := rate[0], rate[1], p99ms[1]
	b.StopTimer()
	b.ReportMetric(pgRate, "postgres_req/s")
	b.ReportMetric(liteRate, "sqlite_req/s")
	b.ReportMetric(pgRate/liteRate, "ratio")
	b.ReportMetric(pgP99, "postgres_p99_ms")
}
