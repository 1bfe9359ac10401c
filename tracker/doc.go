// Package tracker is the HTTP service behind `deploy serve`: the endpoint
// devices ask for updates, which answers from the store's signed manifests,
// counts downloads and keeps what devices report.
//
// # Routes
//
// The seed's API, as the seed's DeployUpdateService calls it:
//
//	GET  /build/latest?app=&device=[&channel=]   {"build": {id, build, ...}, "latest": <envelope>, "acl": <envelope>}
//	GET  /build/download?id=&device=             302 to the CDN, or the bundle itself
//	GET  /build/download/complete?id=&device=    {"ok": true}
//	GET  /build/files?id=                        {"manifest": "<file manifest>", "files_url": "<cdn>/apps/<app>/files/"}, for delta downloads
//
// The Capgo plugin's self-hosted protocol (autoUpdate: true), with the
// deploy app name in the path:
//
//	POST /capgo/{app}/updates   updateUrl: {version, url, checksum[, manifest]} or 200 {error, message, kind},
//	                            also for an invalid app or defaultChannel or a bad body (kind "failed");
//	                            checksum and manifest as the body's plugin_version reads them (plugin.go)
//	POST /capgo/{app}/stats     statsUrl: an array of events, or one; 200 {"status": "ok"}
//
// Operators:
//
//	GET  /api/stats?app=        per-build counts ([Stats]); needs "Authorization: Bearer <StatsToken>"
//	GET  /api/apps...           the dashboard's data (docs/api.md), same token or the dashboard's session
//	GET  /dashboard             the release dashboard (package dashboard); sign in with StatsToken
//	GET  /healthz               {"status": "ok"}: liveness
//	GET  /readyz                {"status": "ready"}, or 503 while the store or the tracker state cannot be used
//	GET  /metrics               Prometheus metrics ([Metrics]); on another address with Config.PrivateMetrics and [Server.ServeMetrics]
//
// Every answer carries CORS headers for WebViews (capacitor://localhost,
// http(s)://localhost) and OPTIONS preflights are answered. Errors are JSON
// [ErrorResponse] values with a 4xx status for bad input (never a 5xx,
// which the plugin retries forever). A build that can never be served as
// it is (its manifest, build record or bundle fails verification: revoked,
// too large, rolled back, tampered) is a 404 "not_servable" on the seed's
// API and HTTP 200 with kind "blocked" on the Capgo update endpoint; only a
// new publish changes it. 503 means only that the store or the event
// database cannot be used right now.
//
// # Trust
//
// The tracker serves only a latest.json that verifies with
// [manifest.Trust.VerifyLatest] against the pinned root keys. It remembers
// the highest ACL version and per-channel sequence it has seen, in its
// database before it serves them, so a store rolled back to older files is
// refused, also after a restart. With an empty database it trusts the
// first root-signed acl.json it reads, however old, unless
// Config.MinACLVersion pins the lowest version it accepts. It serves or
// redirects only bundles of builds that a verified manifest named, and
// serves a bundle itself only once its bytes match the manifest's sha256
// (hashed once per object version: key, size, modification time, ETag). Verified results are
// cached for Config.CacheTTL; concurrent misses share one store read.
//
// Download URLs in answers start with Config.PublicURL; without it they
// are derived from each request, and New logs a warning.
//
// # Events
//
// Events, device failures and floors go to Config.State (package state:
// SQLite for one tracker, PostgreSQL for several). One writer goroutine per
// tracker commits the events of many requests in one transaction and
// answers them after the commit, so an acknowledged event is durable. A resent event counts once: the key is
// (app, device, action, version, timestamp). A download_complete counts
// once per device and build, whether the seed's API, the plugin's statsUrl
// or both reported it. A device that reported update_fail for a version is
// not offered that version again.
package tracker
