package tracker

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"math"
	"net"
	"net/http"
	"net/url"
	"path"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"time"
)

// cors lets WebViews call the tracker: apps run at capacitor://localhost
// (iOS) or http(s)://localhost (Android), a different origin. Devices send
// no cookies, so "*" is the right answer for every origin. OPTIONS
// preflights are answered here, for every path, before rate limits.
func (s *Server) cors(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h["Access-Control-Allow-Origin"] = corsOrigin // shared, as in writeHeader
		h["Access-Control-Expose-Headers"] = corsExpose
		if r.Method != http.MethodOptions {
			next.ServeHTTP(w, r)
			return
		}
		h.Set("Access-Control-Allow-Methods", "GET, HEAD, POST, PUT, DELETE, OPTIONS")
		allow := "Content-Type, Authorization, Range, Cache-Control, X-Requested-With"
		if req := r.Header.Get("Access-Control-Request-Headers"); req != "" && len(req) <= 1024 && isTokenList(req) {
			allow += ", " + req
		}
		h.Set("Access-Control-Allow-Headers", allow)
		h.Set("Access-Control-Max-Age", "86400")
		h.Set("Allow", "GET, HEAD, POST, OPTIONS")
		h.Add("Vary", "Access-Control-Request-Headers")
		w.WriteHeader(http.StatusNoContent)
	})
}

var (
	corsOrigin = []string{"*"}
	corsExpose = []string{"Retry-After, Content-Length, Content-Range, ETag"}
)

// isTokenList reports whether s is a comma-separated list of header names.
func isTokenList(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == ',' || c == ' ') {
			return false
		}
	}
	return true
}

// checkPath refuses paths that are not clean ("//", "/./", "/../"), which
// the mux would otherwise answer with a redirect (and a POST must never be
// redirected).
func (s *Server) checkPath(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		trimCapgoSlash(r)
		if p := r.URL.Path; p == "" || p[0] != '/' || (p != "/" && path.Clean(p) != p) {
			s.writeError(w, r, errorf(codeInvalid, "invalid path %q", abbrev(p)))
			return
		}
		next.ServeHTTP(w, r)
	})
}

// limitAddrs applies the per-address rate limit to every route but the
// probes and the metrics, which a load balancer or a scraper may call
// often from one address.
func (s *Server) limitAddrs(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if p := r.URL.Path; p != "/healthz" && p != "/readyz" && p != "/metrics" {
			if ok, wait := s.addrs.allow(s.clientAddr(r), s.now()); !ok {
				s.tooMany(w, r, wait, limitAddress, "too many requests from this address")
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

// allowDevice applies the per-device rate limit, answering 429 if spent.
func (s *Server) allowDevice(w http.ResponseWriter, r *http.Request, device string) bool {
	ok, wait := s.devices.allow(device, s.now())
	if !ok {
		s.tooMany(w, r, wait, limitDevice, "too many requests from this device")
	}
	return ok
}

// tooMany answers 429 for the limit named limit (device or address).
func (s *Server) tooMany(w http.ResponseWriter, r *http.Request, wait time.Duration, limit, msg string) {
	s.metrics.limited(limit)
	secs := max(1, int(math.Ceil(wait.Seconds())))
	w.Header().Set("Retry-After", strconv.Itoa(secs))
	s.writeError(w, r, errorf(codeRateLimited, "%s; retry in %d s", msg, secs))
}

// clientAddr is the address rate limits count by.
func (s *Server) clientAddr(r *http.Request) string {
	if s.cfg.TrustProxy {
		if xff := r.Header.Values("X-Forwarded-For"); len(xff) > 0 {
			last := xff[len(xff)-1]
			if i := strings.LastIndexByte(last, ','); i >= 0 {
				last = last[i+1:]
			}
			if last = strings.TrimSpace(last); last != "" {
				return last
			}
		}
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// baseURLOf is the tracker's base URL as the device reached it:
// Config.PublicURL, or else the request's X-Forwarded-Proto (or TLS) and
// Host.
func (s *Server) baseURLOf(r *http.Request) string {
	if s.public != "" {
		return s.public
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	if p := r.Header.Get("X-Forwarded-Proto"); p != "" {
		p, _, _ = strings.Cut(p, ",")
		if p = strings.ToLower(strings.TrimSpace(p)); p == "http" || p == "https" {
			scheme = p
		}
	}
	host := r.Host
	if !isHost(host) {
		host = "localhost"
	}
	return scheme + "://" + host
}

func isHost(s string) bool {
	if s == "" || len(s) > 255 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '-' || c == ':' || c == '[' || c == ']') {
			return false
		}
	}
	return true
}

// readBody reads a request body of at most Limits.MaxBody bytes.
func (s *Server) readBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	limit := s.limits.MaxBody
	if r.ContentLength > limit {
		return nil, errorf(codeTooLarge, "request body is %d bytes, the limit is %d; send fewer events at a time", r.ContentLength, limit)
	}
	data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return nil, errorf(codeTooLarge, "request body is over %d bytes; send fewer events at a time", limit)
	}
	if err != nil {
		return nil, errorf(codeInvalid, "could not read the request body: %v", err)
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, errorf(codeInvalid, "empty request body: send the plugin's JSON")
	}
	return data, nil
}

// decodeJSON decodes a JSON body into v, answering 400 with the reason.
func decodeJSON(data []byte, v any) error {
	if err := json.Unmarshal(data, v); err != nil {
		return errorf(codeInvalid, "malformed JSON body: %v", err)
	}
	return nil
}

// recoverPanics turns a panic in a handler into a logged 500.
func (s *Server) recoverPanics(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				s.log.Error().Interface("panic", v).Bytes("stack", debug.Stack()).Str("path", r.URL.Path).Msg("handler panicked")
				if sw, ok := w.(*statusWriter); !ok || sw.status == 0 {
					writeJSON(w, http.StatusInternalServerError, ErrorResponse{Error: codeInternal, Message: "internal error"})
				}
			}
		}()
		next.ServeHTTP(w, r)
	})
}

// logRequests writes one structured access log line per request and
// counts it in the metrics by route pattern and status.
func (s *Server) logRequests(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w}
		next.ServeHTTP(sw, r)
		if sw.status == 0 {
			sw.status = http.StatusOK
		}
		took := time.Since(start)
		s.metrics.request(s.route(r), sw.status, took)
		ev := s.log.Info()
		if sw.status >= 500 {
			ev = s.log.Error()
		}
		ev.Str("method", r.Method).
			Str("path", r.URL.Path).
			Str("query", truncate(redactQuery(r.URL.RawQuery), 256)).
			Int("status", sw.status).
			Int64("bytes", sw.bytes).
			Float64("duration_ms", float64(took.Microseconds())/1000).
			Str("remote", s.clientAddr(r)).
			Str("ua", truncate(r.UserAgent(), 128)).
			Msg("request")
	})
}

// secretParams are query parameters that the access log never shows: a
// client that put a token in a URL must not get it into the logs too.
var secretParams = []string{"token", "stats_token", "password", "secret", "key"}

// deviceParams are query parameters that hold a device id, which the
// access log shows as a tag (see deviceTag).
var deviceParams = []string{"device", "device_id", "deviceid"}

// redactQuery returns raw with the values of secretParams replaced by
// REDACTED and those of deviceParams by their tag.
func redactQuery(raw string) string {
	if raw == "" {
		return raw
	}
	parts := strings.Split(raw, "&")
	for i, p := range parts {
		name, val, _ := strings.Cut(p, "=")
		n, err := url.QueryUnescape(name)
		if err != nil {
			continue
		}
		switch n = strings.ToLower(n); {
		case slices.Contains(secretParams, n):
			parts[i] = name + "=REDACTED"
		case slices.Contains(deviceParams, n):
			if v, err := url.QueryUnescape(val); err == nil {
				val = v
			}
			parts[i] = name + "=" + deviceTag(val)
		}
	}
	return strings.Join(parts, "&")
}

// logKey keys the tags of device ids: random, so a tag tells nothing of
// the id, even to someone who has a list of ids to try, and the same for
// one device while the tracker runs, so its requests can be followed.
var logKey = func() []byte {
	k := make([]byte, 32)
	rand.Read(k)
	return k
}()

// deviceTag is what the access log shows for a device id: "h-" and 8 hex
// digits of an HMAC of the id.
func deviceTag(device string) string {
	if device == "" {
		return ""
	}
	m := hmac.New(sha256.New, logKey)
	m.Write([]byte(device))
	return "h-" + hex.EncodeToString(m.Sum(nil)[:4])
}

// route is the mux pattern that answers r, such as "GET /build/latest":
// set by the mux once it has routed r, else looked up (for a request
// answered before routing: a preflight, a bad path, a rate limit).
func (s *Server) route(r *http.Request) string {
	if r.Pattern != "" {
		return r.Pattern
	}
	if _, p := s.mux.Handler(r); p != "" {
		return p
	}
	return "unmatched"
}

// statusWriter records the status and size of an answer. It passes
// ReadFrom through, so a bundle served from a file still uses sendfile.
type statusWriter struct {
	http.ResponseWriter
	status int
	bytes  int64
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(p)
	w.bytes += int64(n)
	return n, err
}

func (w *statusWriter) ReadFrom(r io.Reader) (int64, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := io.Copy(w.ResponseWriter, r)
	w.bytes += n
	return n, err
}

// Unwrap lets http.ResponseController reach the connection.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
