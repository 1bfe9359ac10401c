// Package dashboard is the tracker's release dashboard: a read-only page at
// /dashboard and the JSON API under /api/apps that it reads (docs/api.md).
//
// # Data
//
// The dashboard reads everything through a [Source], which the tracker
// implements from its verified manifests and its event store: the apps and
// their channels (build, staged rollout, pointer expiry), each channel's
// history of signed pointers, counters per build and first installs per
// hour or day, which [Dashboard] turns into cumulative adoption series.
//
// # Access
//
// Everything but the static assets needs the tracker's stats token: scripts
// send it as a bearer token; people type it into the sign-in form, which
// sets a Secure, HttpOnly, SameSite=Strict session cookie holding an HMAC
// of an expiry, never the token. Pages carry a strict
// [ContentSecurityPolicy]; scripts and styles are embedded (web/dist) and
// nothing is loaded from other sites.
//
// # Assets
//
// web/src holds the pages (embedded as they are), the script and styles;
// web/build.mjs bundles the script and styles with uPlot (from npm, by
// esbuild) into web/dist, which is committed and embedded. A test rebuilds
// web/dist and fails if it differs. After changing web/src/app.js or
// app.css, run `npm ci && npm run build` in web/.
package dashboard
