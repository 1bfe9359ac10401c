package tracker

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/cartona/deploy/manifest"
	"github.com/cartona/deploy/state"
)

// capgoRequest is the JSON the Capgo plugin POSTs to its updateUrl, and,
// with action, timestamp and old_version_name, each event it POSTs to its
// statsUrl. Fields the tracker does not use are not decoded.
type capgoRequest struct {
	Platform       text `json:"platform"`
	DeviceID       text `json:"device_id"`
	AppID          text `json:"app_id"` // the native app ID; the deploy app comes from the path
	VersionName    text `json:"version_name"`
	VersionBuild   text `json:"version_build"`
	PluginVersion  text `json:"plugin_version"`
	DefaultChannel text `json:"defaultChannel"`
	Channel        text `json:"channel"` // setChannel

	Action         text `json:"action"`
	OldVersionName text `json:"old_version_name"`
	Timestamp      text `json:"timestamp"`
	// Metadata is kept raw: only a verify_fail event's rule is read from
	// it, and what else a plugin sends there must not make the event
	// invalid.
	Metadata json.RawMessage `json:"metadata"`
}

// actionVerifyFail is the stats event of a device that rejected a
// manifest (docs/format.md, "How devices get the envelopes").
const actionVerifyFail = "verify_fail"

// verifyRule is the rule a verify_fail event's metadata names, as
// verify_failures_total labels it: one of the verifiers' rules, else
// "other".
func verifyRule(metadata json.RawMessage) string {
	var m struct {
		Rule string `json:"rule"`
	}
	json.Unmarshal(metadata, &m)
	if slices.Contains(manifest.Rules, manifest.Rule(m.Rule)) {
		return m.Rule
	}
	return "other"
}

// capgoUpdate is the success answer of the update endpoint. The plugin
// wants no error, kind or message keys and no nulls in it.
type capgoUpdate struct {
	Version  string `json:"version"`
	URL      string `json:"url"`
	Checksum string `json:"checksum"`
}

// capgoNoUpdate is every other answer of the update endpoint, sent with
// HTTP 200 as the protocol wants.
type capgoNoUpdate struct {
	Error   string `json:"error"`
	Message string `json:"message"`
	Kind    string `json:"kind"` // up_to_date, blocked or failed
}

// handleCapgoUpdates answers POST /capgo/{app}/updates, the plugin's
// updateUrl: {version, url, checksum} when the device should update, else
// HTTP 200 {error, message, kind}. The url is the tracker's own
// /build/download, so the download is counted. Set in capacitor.config:
//
//	CapacitorUpdater: {
//	  autoUpdate: true,
//	  updateUrl: "https://<tracker>/capgo/<app>/updates",
//	  statsUrl:  "https://<tracker>/capgo/<app>/stats",
//	  channelUrl: "https://<tracker>/capgo/<app>/channel",
//	}
//
// The channel is the one the device chose with setChannel, else the body's
// defaultChannel, else production; the build is offerFor's, with the
// body's version_build as native version. An invalid
// app or channel name is a setup error, answered like an unknown channel:
// 200 with kind "failed", and so is a body that is not the plugin's JSON
// (capgoFailed); only 429 keeps its status. A build that can never verify
// is 200 with kind "blocked" and error "not_servable". writeCapgoUpdate
// picks the checksum and, for plugins that take one, adds the file manifest.
func (s *Server) handleCapgoUpdates(w http.ResponseWriter, r *http.Request) {
	body, err := s.readBody(w, r)
	if err != nil {
		s.capgoFailed(w, r, err)
		return
	}
	var req capgoRequest
	if err := decodeJSON(body, &req); err != nil {
		s.capgoFailed(w, r, err)
		return
	}
	device, err := checkDevice(string(req.DeviceID))
	if err == nil {
		err = checkVersion("version_name", string(req.VersionName))
	}
	if err == nil {
		err = checkVersion("version_build", string(req.VersionBuild))
	}
	if err != nil {
		s.capgoFailed(w, r, err)
		return
	}
	app := r.PathValue("app")
	channel := s.deviceChannel(app, device, string(req.DefaultChannel))
	if !s.allowDevice(w, r, device) {
		return
	}
	if msg := setupError(app, channel); msg != "" {
		noUpdate(w, codeInvalid, msg, "failed")
		return
	}
	rel, err := s.man.release(r.Context(), app, channel)
	if err != nil {
		ae := s.asAppError(r, err)
		noUpdate(w, ae.Code, ae.Message, capgoKind(ae.Code))
		return
	}
	o := s.offerFor(r.Context(), rel, string(req.VersionBuild), device)
	if o.build == nil {
		noUpdate(w, o.reason, o.detail, "blocked")
		return
	}
	b := o.build
	check := state.Event{App: app, Device: device, Action: state.ActionCheck, Version: b.Version, Number: b.Number,
		TS: s.now().Truncate(time.Minute).UnixMilli(), OldVersion: string(req.VersionName),
		Platform: truncate(string(req.Platform), maxShortLen), PluginVersion: truncate(string(req.PluginVersion), maxShortLen), Source: "capgo"}
	check = s.health.tagged(r, check)
	s.state.RecordCheck(check)
	s.health.seen(r.Context(), check)
	if string(req.VersionName) == b.Version {
		noUpdate(w, "no_new_version_available", fmt.Sprintf("version %s is the latest on channel %s for this device", b.Version, channel), "up_to_date")
		return
	}
	s.writeCapgoUpdate(w, r, &req, app, *b, device)
}

// setupError explains an invalid app (in the updateUrl) or channel (the
// plugin's defaultChannel), or returns "".
func setupError(app, channel string) string {
	if manifest.CheckName("app", app) != nil {
		return fmt.Sprintf("invalid app name %q in the updateUrl: use https://<tracker>/capgo/<app>/updates with the deploy app name, 1 to 64 lowercase letters, digits, '.', '_' or '-'", abbrev(app))
	}
	if manifest.CheckName("channel", channel) != nil {
		if lower := strings.ToLower(channel); manifest.CheckName("channel", lower) == nil {
			return fmt.Sprintf("invalid channel %q in defaultChannel: channel names are lowercase; set defaultChannel to %q", channel, lower)
		}
		return fmt.Sprintf("invalid channel %q in defaultChannel: use 1 to 64 lowercase letters, digits, '.', '_' or '-', starting with a letter or digit", abbrev(channel))
	}
	return ""
}

// capgoKind is the kind of a no-update answer for an error code. A build
// that can never be served is "blocked": the plugin logs it and stays on
// its bundle. Anything else is "failed", which the plugin counts as a
// download_fail.
func capgoKind(code string) string {
	if code == codeNotServable {
		return "blocked"
	}
	return "failed"
}

func noUpdate(w http.ResponseWriter, code, msg, kind string) {
	writeJSON(w, http.StatusOK, capgoNoUpdate{Error: code, Message: msg, Kind: kind})
}

// decodeCapgoStats reads a stats body: an array of events (plugins 8.42
// and later) or one event object (older plugins).
func (s *Server) decodeCapgoStats(body []byte) ([]capgoRequest, error) {
	var reqs []capgoRequest
	var err error
	switch bytes.TrimLeft(body, " \t\r\n")[0] {
	case '[':
		err = decodeJSON(body, &reqs)
	case '{':
		reqs = make([]capgoRequest, 1)
		err = decodeJSON(body, &reqs[0])
	default:
		err = errorf(codeInvalid, "the stats body must be a JSON array of events or one event object")
	}
	if err == nil && len(reqs) > s.limits.MaxEvents {
		err = errorf(codeTooLarge, "%d events in one request, the limit is %d; send fewer at a time", len(reqs), s.limits.MaxEvents)
	}
	return reqs, err
}

// capgoEvents turns the plugin's events into stored events, skipping the
// invalid ones: it returns how many it skipped and why the first was.
func (s *Server) capgoEvents(app string, reqs []capgoRequest) (evs []state.Event, rejected []string, ignored int, invalid error) {
	evs = make([]state.Event, 0, len(reqs))
	now := s.now()
	for i, q := range reqs {
		ev, err := s.capgoEvent(app, q, now)
		if err != nil {
			if invalid == nil {
				msg := err.Error()
				var ae *appError
				if errors.As(err, &ae) {
					msg = ae.Message
				}
				invalid = errorf(codeInvalid, "event %d: %s", i, msg)
			}
			ignored++
			continue
		}
		evs = append(evs, ev)
		if ev.Action == actionVerifyFail {
			rejected = append(rejected, verifyRule(q.Metadata))
		}
	}
	return evs, rejected, ignored, invalid
}

// handleCapgoStats answers POST /capgo/{app}/stats, the plugin's statsUrl:
// a JSON array of events (plugin 8.42 and later) or one event object, with
// 200 {"status": "ok"} once they are on disk. A resent event counts once.
// Invalid events in a batch are skipped, so one bad event does not make the
// plugin drop the others; a request with no valid event is a 400.
func (s *Server) handleCapgoStats(w http.ResponseWriter, r *http.Request) {
	app := r.PathValue("app")
	if err := checkName("app", app); err != nil {
		s.writeError(w, r, err)
		return
	}
	body, err := s.readBody(w, r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	reqs, err := s.decodeCapgoStats(body)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	// The request took one token of the address's budget; each further
	// event takes one more, so that batches do not multiply what one
	// address may store.
	if ok, wait := s.addrs.allowN(s.clientAddr(r), s.now(), float64(len(reqs)-1)); !ok {
		s.tooMany(w, r, wait, limitAddress, "too many events from this address")
		return
	}
	evs, rejected, ignored, invalid := s.capgoEvents(app, reqs)
	if len(evs) == 0 && invalid != nil {
		s.writeError(w, r, invalid)
		return
	}
	seen := map[string]bool{}
	for _, ev := range evs {
		if !seen[ev.Device] {
			seen[ev.Device] = true
			if !s.allowDevice(w, r, ev.Device) {
				return
			}
		}
	}
	if len(evs) > 0 {
		s.health.tag(r, evs)
		if err := s.record(r.Context(), evs...); err != nil {
			s.writeError(w, r, err)
			return
		}
		s.health.observe(r.Context(), evs)
		for _, rule := range rejected {
			s.metrics.verifyFailed(rule)
		}
	}
	if ignored > 0 {
		s.log.Info().Int("ignored", ignored).Err(invalid).Str("app", app).Msg("invalid stats events skipped")
	}
	writeJSON(w, http.StatusOK, struct {
		Status  string `json:"status"`
		Ignored int    `json:"ignored,omitempty"`
	}{"ok", ignored})
}

// capgoEvent validates one stats event. Errors are *appError.
func (s *Server) capgoEvent(app string, q capgoRequest, now time.Time) (state.Event, error) {
	device, err := checkDevice(string(q.DeviceID))
	if err != nil {
		return state.Event{}, err
	}
	action := string(q.Action)
	if err := checkAction(action); err != nil {
		return state.Event{}, err
	}
	version, old := string(q.VersionName), string(q.OldVersionName)
	if err := checkVersion("version_name", version); err != nil {
		return state.Event{}, err
	}
	if err := checkVersion("old_version_name", old); err != nil {
		return state.Event{}, err
	}
	ts, err := parseTimestamp(string(q.Timestamp), now)
	if err != nil {
		return state.Event{}, err
	}
	ev := state.Event{App: app, Device: device, Action: action, Version: version, TS: ts, OldVersion: old,
		Platform: truncate(string(q.Platform), maxShortLen), PluginVersion: truncate(string(q.PluginVersion), maxShortLen), Source: "capgo"}
	if b := s.man.byVersion(app, version); b != nil {
		ev.Number = b.ref.Number
	}
	return ev, nil
}

// parseTimestamp reads an event's timestamp in milliseconds. Events from
// plugins that send none get the time they arrive.
func parseTimestamp(s string, now time.Time) (int64, error) {
	if s == "" {
		return now.UnixMilli(), nil
	}
	ts, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		f, ferr := strconv.ParseFloat(s, 64)
		if ferr != nil || math.IsNaN(f) || f != math.Trunc(f) || f <= 0 || f > 1<<53 {
			return 0, errorf(codeInvalid, "timestamp %q is not milliseconds since 1970", abbrev(s))
		}
		ts = int64(f)
	}
	if ts <= 0 || ts > 1<<53 {
		return 0, errorf(codeInvalid, "timestamp %d is out of range: send milliseconds since 1970", ts)
	}
	return ts, nil
}
