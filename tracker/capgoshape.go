package tracker

import (
	"net/http"
	"strings"
)

// capgoFailed answers a request to the update endpoint that cannot be
// served the way the plugin understands every failure: HTTP 200 with
// error, message and kind "failed". A status of 400 or more makes every
// plugin version report a download_fail; a 200 without kind makes plugins
// before 8.45.11 / 7.50.1 log the error and send nothing. Too many
// requests stays a 429 with Retry-After, which the plugin honours.
func (s *Server) capgoFailed(w http.ResponseWriter, r *http.Request, err error) {
	ae := s.asAppError(r, err)
	if ae.Code == codeRateLimited {
		s.writeError(w, r, ae)
		return
	}
	noUpdate(w, ae.Code, ae.Message, "failed")
}

// trimCapgoSlash drops one trailing '/' from a path under /capgo/, as in
// an updateUrl, statsUrl or channelUrl written with one: Capgo's own
// server accepts both.
func trimCapgoSlash(r *http.Request) {
	p := r.URL.Path
	if len(p) > len("/capgo/") && strings.HasPrefix(p, "/capgo/") && strings.HasSuffix(p, "/") && !strings.HasSuffix(p, "//") {
		r.URL.Path = p[:len(p)-1]
		r.URL.RawPath = ""
	}
}
