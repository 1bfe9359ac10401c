package tracker

import (
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/cartona/deploy/manifest"
)

// Metrics are the tracker's Prometheus collectors, on a registry of their
// own so that several Servers in one process do not collide. Make one
// with NewMetrics when something outside the Server reports to it (the
// event store's commits); otherwise New makes one. Every label takes its
// values from a fixed set (route patterns, status codes, rules), never
// from request data, so the number of series stays bounded.
//
// A series whose labels are known up front (kinds and rules of manifests,
// limits, caches) is there at 0 from the start, so that alerts using
// absent() or rate() see it before its first increment. Requests appear
// per route and status once answered, and rollout halts per app and
// channel once the tracker serves a staged rollout there.
//
// The methods are safe for concurrent use and do nothing on a nil
// *Metrics.
type Metrics struct {
	reg *prometheus.Registry

	requests     *prometheus.CounterVec   // route, status
	latency      *prometheus.HistogramVec // route, status
	verified     *prometheus.CounterVec   // kind
	refused      *prometheus.CounterVec   // kind, rule
	cache        *prometheus.CounterVec   // cache, result
	rateLimited  *prometheus.CounterVec   // limit
	ingested     prometheus.Counter
	commitFailed prometheus.Counter
	commitSize   prometheus.Histogram
	commitTime   prometheus.Histogram
	halts        *prometheus.CounterVec // app, channel
	rejected     *prometheus.CounterVec // rule
}

// NewMetrics returns a fresh set of collectors, with the Go runtime's and
// the process's, registered on a new registry.
func NewMetrics() *Metrics {
	const ns = "deploy_tracker"
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "http_requests_total",
			Help: "HTTP requests answered, by route pattern and status."}, []string{"route", "status"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: ns, Name: "http_request_duration_seconds",
			Help:    "Time to answer an HTTP request, by route pattern and status; bundle downloads include the transfer.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 10, 60}}, []string{"route", "status"}),
		verified: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "manifests_verified_total",
			Help: "Manifests read from the store that verified (latest: a channel's latest.json with its ACL; build: a build record), once per cache fill."}, []string{"kind"}),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "manifests_refused_total",
			Help: "Manifests read from the store that failed verification, by kind and the rule they broke, once per cache fill."}, []string{"kind", "rule"}),
		cache: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "cache_requests_total",
			Help: "Lookups in the caches of verified store reads (acl, latest, build), by result (hit or miss)."}, []string{"cache", "result"}),
		rateLimited: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "rate_limited_total",
			Help: "Requests refused with 429, by the limit spent: device (requests per device), address (requests per client address) or token (wrong stats tokens per client address)."}, []string{"limit"}),
		ingested: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Name: "events_ingested_total",
			Help: "Events committed to the event store, resent duplicates included."}),
		commitFailed: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Name: "event_commit_failures_total",
			Help: "Group commits of the event store that failed; their requests were answered 503."}),
		commitSize: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: ns, Name: "event_commit_batch_events",
			Help: "Events in one group commit of the event store.", Buckets: prometheus.ExponentialBuckets(1, 4, 8)}),
		commitTime: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: ns, Name: "event_commit_duration_seconds",
			Help:    "Time of one group commit of the event store, failed ones included.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 5}}),
		halts: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "rollout_halts_total",
			Help: "Staged rollouts halted, by app and channel: each halt once, on the tracker that recorded it."}, []string{"app", "channel"}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "device_verify_failures_total",
			Help: "verify_fail events received and stored, resent ones included: devices that rejected a manifest, by the rule it broke (other: a rule the device did not name or that is unknown). Anyone can post events: alert on it, then look at the events."}, []string{"rule"}),
	}
	m.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.requests, m.latency, m.verified, m.refused, m.cache, m.rateLimited,
		m.ingested, m.commitFailed, m.commitSize, m.commitTime, m.halts, m.rejected)
	for _, kind := range []string{kindLatest, kindBuild} {
		m.verified.WithLabelValues(kind)
	}
	for kind, rules := range refusable {
		for _, rule := range rules {
			m.refused.WithLabelValues(kind, string(rule))
		}
	}
	for _, limit := range []string{limitDevice, limitAddress, limitToken} {
		m.rateLimited.WithLabelValues(limit)
	}
	for _, rule := range manifest.Rules {
		m.rejected.WithLabelValues(string(rule))
	}
	m.rejected.WithLabelValues("other")
	return m
}

// verifyFailed counts a stored verify_fail event of a device.
func (m *Metrics) verifyFailed(rule string) {
	if m == nil {
		return
	}
	m.rejected.WithLabelValues(rule).Inc()
}

// The kinds of manifests the tracker verifies, as the manifest metrics
// label them.
const (
	kindACL    = "acl"    // acl.json
	kindLatest = "latest" // a channel's latest.json, with the ACL it rests on
	kindBuild  = "build"  // a build record
)

// refusable are the rules a manifest of each kind can break, in the order
// they are checked: each has its series of manifests_refused_total from
// the start. A latest.json is verified with the ACL, so it can break the
// ACL's rules too. A rule not listed here appears once broken.
var refusable = map[string][]manifest.Rule{
	kindACL: {manifest.RuleTooLarge, manifest.RuleMalformed, manifest.RuleUnsigned, manifest.RuleBadSignature,
		manifest.RuleACLUntrusted, manifest.RuleACLRollback},
	kindLatest: {manifest.RuleTooLarge, manifest.RuleMalformed, manifest.RuleUnsigned, manifest.RuleACLUntrusted,
		manifest.RuleACLRollback, manifest.RuleBadSignature, manifest.RuleUntrustedKey, manifest.RuleAppMismatch,
		manifest.RuleChannelMismatch, manifest.RuleNotGranted, manifest.RuleRollback, manifest.RuleExpired},
	kindBuild: {manifest.RuleTooLarge, manifest.RuleMalformed, manifest.RuleUnsigned, manifest.RuleBadSignature,
		manifest.RuleUntrustedKey, manifest.RuleAppMismatch, manifest.RuleNotGranted},
}

// The rate limits, as rate_limited_total labels them.
const (
	limitDevice  = "device"  // requests per device
	limitAddress = "address" // requests per client address
	limitToken   = "token"   // wrong stats tokens per client address
)

// Handler serves the metrics in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

// ObserveCommit records one group commit of the event store: how many
// events it held, how long it took, and whether it failed. Event store
// backends call it once per transaction.
func (m *Metrics) ObserveCommit(events int, took time.Duration, err error) {
	if m == nil {
		return
	}
	m.commitTime.Observe(took.Seconds())
	if err != nil {
		m.commitFailed.Inc()
		return
	}
	m.commitSize.Observe(float64(events))
	m.ingested.Add(float64(events))
}

// Halted records that the staged rollout of a channel was halted. app and
// channel must be names from a verified manifest.
func (m *Metrics) Halted(app, channel string) {
	if m == nil {
		return
	}
	m.halts.WithLabelValues(app, channel).Inc()
}

// rollout makes the halt series of a channel the tracker serves a staged
// rollout on, at 0 until its first halt, so that increase() sees that
// one. app and channel must be names from a verified manifest.
func (m *Metrics) rollout(app, channel string) {
	if m == nil {
		return
	}
	m.halts.WithLabelValues(app, channel)
}

// request records an answered request. route is a pattern of the mux.
func (m *Metrics) request(route string, status int, took time.Duration) {
	if m == nil {
		return
	}
	code := strconv.Itoa(status)
	m.requests.WithLabelValues(route, code).Inc()
	m.latency.WithLabelValues(route, code).Observe(took.Seconds())
}

// manifest records a verification: rule is "" for a manifest that
// verified, else the rule it broke (manifest.RuleOf).
func (m *Metrics) manifest(kind, rule string) {
	if m == nil {
		return
	}
	if rule == "" {
		m.verified.WithLabelValues(kind).Inc()
		return
	}
	m.refused.WithLabelValues(kind, rule).Inc()
}

// cacheLookups returns the function a ttlCache named name reports each
// lookup to, or nil.
func (m *Metrics) cacheLookups(name string) func(hit bool) {
	if m == nil {
		return nil
	}
	hit, miss := m.cache.WithLabelValues(name, "hit"), m.cache.WithLabelValues(name, "miss")
	return func(h bool) {
		if h {
			hit.Inc()
		} else {
			miss.Inc()
		}
	}
}

// limited records a request refused by the limit named limit.
func (m *Metrics) limited(limit string) {
	if m == nil {
		return
	}
	m.rateLimited.WithLabelValues(limit).Inc()
}
