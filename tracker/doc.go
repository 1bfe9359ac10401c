// Package tracker is the HTTP service behind `deploy serve`: the endpoint
// devices ask for updates, which answers from the store's signed manifests,
// counts downloads and keeps what devices report.
//
// # Routes
//
// The seed's API, as the seed's DeployUpdateService calls it:
//
//	GET  /build/latest?app=&device=[&channel=][&native=]
//	                                             {"build": {id, build, ...}, "latest": <envelope>, "acl": <envelope>},
//	                                             or {"build": null, "blocked": true, "error", "message"}
//	GET  /build/download?id=&device=             302 to the CDN, or the bundle itself
//	GET  /build/download/complete?id=&device=    {"ok": true}
//	GET  /build/files?id=[&from=]                {"manifest": "<file manifest>", "files_url": "<cdn>/apps/<app>/files/"}, for delta downloads; {"patch": ...} from the manifest whose sha256 is from
//
// The Capgo plugin's self-hosted protocol (autoUpdate: true), with the
// deploy app name in the path:
//
//	POST /capgo/{app}/updates   updateUrl: {version, url, checksum[, manifest]} or 200 {error, message, kind},
//	                            also for an invalid app or defaultChannel or a bad body (kind "failed");
//	                            checksum and manifest as the body's plugin_version reads them (plugin.go)
//	POST /capgo/{app}/stats     statsUrl: an array of events, or one; 200 {"status": "ok"}
//	POST /capgo/{app}/channel   channelUrl, setChannel: {"channel"}, only a channel whose signed
//	                            settings have self_assign; 200 {"status": "ok"} or {error, message}
//	PUT  /capgo/{app}/channel   getChannel: {"channel", "status": "override"|"default", "allowSet"}
//	DELETE /capgo/{app}/channel unsetChannel: back to the defaultChannel
//	GET  /capgo/{app}/channel   listChannels: [{id, name, public, allow_self_set}] of self-assignable channels
//
// # Releases
//
// Both device APIs answer with the build (*manifest.Latest).Select picks
// for the device: the candidate of a staged rollout when the device is in
// its cohort, else the newest build of the pointer (stable, then fallbacks)
// whose native range fits the device's native version (the plugin's
// version_build, /build/latest's native=); a device that no build fits gets
// nothing and is told why. A build that failed on the device is not offered
// to it again: after one update_fail, or after state.Options.RetryLimit
// set_fail, checksum_fail or unzip_fail reports, whichever tracker took
// them (the plugin deletes such a bundle and would download it in full at
// every start); a device whose candidate failed gets the build it would
// run without the rollout.
//
// The tracker watches each candidate it serves: the devices of its cohort
// with any event for its version, and those of them that reported
// update_fail, set_fail, checksum_fail, unzip_fail or app_crash* for it,
// each client network weighing as at most HaltPolicy.PerNetwork devices
// with its own failure rate (state.RolloutCounts). Past the [HaltPolicy]
// threshold it halts the rollout at once (no device gets the candidate from
// the tracker), stores and logs the decision, shows it in /api/stats and on
// the dashboard, and, with HaltPolicy.Key, writes a signed halt of the
// channel's pointer as its latest.json (history entry first), so devices
// reading the CDN drop the candidate within one cache period; devices that
// installed it are offered the stable build again. A halt holds for its
// rollout id: a pointer that keeps the halted rollout is halted again, and a
// new rollout (a new id) starts afresh. The halt key needs only can_halt in
// the ACL: a halt can take a candidate away, never offer a build
// (docs/format.md, "Halt"). A device that chose its channel
// with setChannel is answered from that channel by the update endpoint.
//
// Operators:
//
//	GET  /api/stats?app=        per-build counts and rollouts ([Stats]); needs "Authorization: Bearer <StatsToken>"
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
// redirects only bundles of builds that a verified manifest named, and only
// while the store's object matches the manifest's sha256 and size: hashed
// once per object version (key, size, modification time, ETag), which a
// redirect to the CDN reads with one Stat. Verified results are cached for
// Config.CacheTTL; concurrent misses share one store read.
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
// or both reported it.
package tracker
