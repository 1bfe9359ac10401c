package tracker

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/cartona/deploy/manifest"
	"github.com/cartona/deploy/state"
)

// noBuildAnswer is the /build/latest answer for a device that gets no
// build: one that failed on it, or none that fits its native version.
type noBuildAnswer struct {
	Build   *struct{} `json:"build"`   // always null
	Blocked bool      `json:"blocked"` // true: the seed's client downloads nothing
	Error   string    `json:"error"`   // "blocked" or "no_compatible_build"
	Message string    `json:"message"`
}

// handleLatest answers GET /build/latest?app=&device=[&channel=][&native=]:
// the build the channel's verified pointer gives this device (staged
// rollout, native version), {"build": {...}, "latest": <signed
// latest.json>, "acl": <signed acl.json>}. native is the app's native
// version (versionName); without it, builds that name a native range are
// not offered.
//
// A device that gets nothing is answered {"build": null, "blocked": true,
// "error", "message"}: the seed's unchanged client then shows "No download
// possible" and downloads nothing. That is the answer for a build that
// reported update_fail on the device too: answering the build again would
// be worse, as the plugin deleted the failed bundle, so the client would
// download it, set it, fail again (the seed never calls notifyAppReady)
// and loop on every start. The block ends when a newer build is published.
func (s *Server) handleLatest(w http.ResponseWriter, r *http.Request) {
	app, device, err := s.appDevice(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	channel, err := query(r, "channel")
	if err == nil {
		if channel == "" {
			channel = manifest.DefaultChannel
		}
		err = checkName("channel", channel)
	}
	var native string
	if err == nil {
		if native, err = query(r, "native"); err == nil {
			err = checkVersion("native", native)
		}
	}
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if !s.allowDevice(w, r, device) {
		return
	}
	rel, err := s.man.release(r.Context(), app, channel)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	o := s.offerFor(r.Context(), rel, native, device)
	if o.build == nil {
		writeJSON(w, http.StatusOK, noBuildAnswer{Blocked: true, Error: o.reason, Message: o.detail})
		return
	}
	b := o.build
	check := state.Event{App: app, Device: device, Action: state.ActionCheck, Version: b.Version, Number: b.Number,
		TS: s.now().Truncate(time.Minute).UnixMilli(), Source: "seed"}
	check = s.health.tagged(r, check)
	s.state.RecordCheck(check)
	s.health.seen(r.Context(), check)
	head := rel.seedHeads[b.Number]
	u := appendJSONString(make([]byte, 0, 256), s.downloadURL(r, b.ID, device))
	writeRaw(w, http.StatusOK, head, u, rel.seedTail) // the envelopes are written, never copied, per request
}

// handleDownload answers GET /build/download?id=&device=: a 302 to the
// bundle on the CDN, or the bundle itself (with Range support) when no CDN
// is configured. Only builds named by verified manifests are served, and
// only while the store's bundle matches their sha256 and size: devices
// whose plugin checks a CRC32 or nothing would install whatever the CDN
// gives them.
func (s *Server) handleDownload(w http.ResponseWriter, r *http.Request) {
	b, device, ok := s.buildDevice(w, r)
	if !ok {
		return
	}
	if r.Method == http.MethodGet && fromStart(r.Header.Get("Range")) {
		ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
		err := s.record(ctx, s.health.tagged(r, state.Event{App: b.app, Device: device, Action: state.ActionDownloadStart, Version: b.ref.Version,
			Number: b.ref.Number, TS: s.now().UnixMilli(), Source: "seed"}))
		cancel()
		if err != nil { // the download matters more than its count
			s.log.Warn().Err(err).Str("build", b.ref.ID).Msg("download_start not recorded")
		}
	}
	if s.cdn != "" {
		if !s.checkStored(w, r, b) {
			return
		}
		w.Header().Set("Location", s.cdn+"/"+b.ref.Bundle)
		w.Header().Set("Cache-Control", "no-store")
		w.WriteHeader(http.StatusFound)
		return
	}
	s.serveBundle(w, r, b)
}

// handleComplete answers GET /build/download/complete?id=&device= with
// {"ok": true} once the download_complete event is on disk. The seed's
// client calls it again when the app goes to the background, so it counts
// once per device and build.
func (s *Server) handleComplete(w http.ResponseWriter, r *http.Request) {
	b, device, ok := s.buildDevice(w, r)
	if !ok {
		return
	}
	err := s.record(r.Context(), s.health.tagged(r, state.Event{App: b.app, Device: device, Action: state.ActionDownloadComplete,
		Version: b.ref.Version, Number: b.ref.Number, TS: 0, Source: "seed"}))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]bool{"ok": true})
}

// fromStart reports whether a Range header asks for the start of the file
// (or is absent): a resumed download is not a new one.
func fromStart(rng string) bool {
	return rng == "" || strings.HasPrefix(strings.TrimSpace(rng), "bytes=0-")
}

// appDevice reads and validates the app and device query parameters.
func (s *Server) appDevice(r *http.Request) (app, device string, err error) {
	if app, err = query(r, "app"); err != nil {
		return "", "", err
	}
	if app == "" {
		return "", "", errorf(codeInvalid, "missing parameter app: pass ?app=<name>&device=<device id>")
	}
	if err = checkName("app", app); err != nil {
		return "", "", err
	}
	d, err := query(r, "device")
	if err != nil {
		return "", "", err
	}
	device, err = checkDevice(d)
	return app, device, err
}

// buildDevice reads the id and device query parameters, applies the device
// rate limit and finds the build. It answers the request itself on error.
func (s *Server) buildDevice(w http.ResponseWriter, r *http.Request) (*buildInfo, string, bool) {
	id, err := query(r, "id")
	if err == nil {
		_, _, err = parseBuildID(id)
	}
	var device, d string
	if err == nil {
		if d, err = query(r, "device"); err == nil {
			device, err = checkDevice(d)
		}
	}
	if err != nil {
		s.writeError(w, r, err)
		return nil, "", false
	}
	if !s.allowDevice(w, r, device) {
		return nil, "", false
	}
	b, err := s.man.build(r.Context(), id)
	if err != nil {
		s.writeError(w, r, err)
		return nil, "", false
	}
	return b, device, true
}

// downloadURL is the tracker's own download URL of a build for a device.
func (s *Server) downloadURL(r *http.Request, id, device string) string {
	return s.baseURLOf(r) + "/build/download?id=" + url.QueryEscape(id) + "&device=" + url.QueryEscape(device)
}
