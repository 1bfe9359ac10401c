package tracker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"

	"github.com/cartona/deploy/state"
)

// Error codes of application errors, the "error" field of an error answer.
// statusOf maps each to its HTTP status; nothing else picks a status.
const (
	codeInvalid      = "invalid_request"
	codeNotFound     = "not_found"
	codeNotServable  = "not_servable"
	codeNoRoute      = "no_route"
	codeMethod       = "method_not_allowed"
	codeTooLarge     = "too_large"
	codeRateLimited  = "rate_limited"
	codeUnauthorized = "unauthorized"
	codeForbidden    = "forbidden"
	codeUnavailable  = "unavailable"
	codeInternal     = "internal"
)

var statusOf = map[string]int{
	codeInvalid:      http.StatusBadRequest,
	codeNotFound:     http.StatusNotFound,
	codeNotServable:  http.StatusNotFound,
	codeNoRoute:      http.StatusNotFound,
	codeMethod:       http.StatusMethodNotAllowed,
	codeTooLarge:     http.StatusRequestEntityTooLarge,
	codeRateLimited:  http.StatusTooManyRequests,
	codeUnauthorized: http.StatusUnauthorized,
	codeForbidden:    http.StatusForbidden,
	codeUnavailable:  http.StatusServiceUnavailable,
	codeInternal:     http.StatusInternalServerError,
}

// A not_servable answer is for a manifest, build record or bundle that can
// never verify as it is (unsigned, revoked, too large, rolled back, bytes
// that differ from their sha256): only a new publish changes it, so it is
// a 404, as for a channel without builds, never a 5xx that devices retry.
// A 503 (unavailable) is only for what may pass: a store or a database
// that cannot be reached right now.

// ErrorResponse is the body of every error answer of the tracker (except
// the Capgo update endpoint, which answers errors with HTTP 200 as its
// protocol wants).
type ErrorResponse struct {
	Error   string `json:"error"`
	Message string `json:"message"`
	// Rule is the verification rule a not_servable manifest breaks, when
	// one does.
	Rule string `json:"rule,omitempty"`
}

// appError is an error meant for the client: a code and a message that says
// what to do. Err, if set, is the cause, logged but never shown.
type appError struct {
	Code    string
	Message string
	Rule    string // of a not_servable manifest
	Err     error
}

func (e *appError) Error() string {
	if e.Err != nil {
		return e.Message + ": " + e.Err.Error()
	}
	return e.Message
}

func (e *appError) Unwrap() error { return e.Err }

func errorf(code, format string, args ...any) *appError {
	return &appError{Code: code, Message: fmt.Sprintf(format, args...)}
}

// writeError answers err. An *appError is shown as it is; anything else is
// logged and shown as "internal error".
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	ae := s.asAppError(r, err)
	status, ok := statusOf[ae.Code]
	if !ok {
		status = http.StatusInternalServerError
	}
	if status == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", "30")
	}
	writeJSON(w, status, ErrorResponse{Error: ae.Code, Message: ae.Message, Rule: ae.Rule})
}

// asAppError returns err as the *appError a client may see, logging
// internal errors. Unavailable errors are logged where they arise, once per
// cause rather than once per request.
func (s *Server) asAppError(r *http.Request, err error) *appError {
	var ae *appError
	switch {
	case errors.As(err, &ae) && ae.Code != codeInternal:
		return ae
	case errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded):
		// The client left or its deadline passed: nobody reads the answer.
		return &appError{Code: codeUnavailable, Message: "the request was cancelled before it was answered"}
	}
	s.log.Error().Err(err).Str("method", r.Method).Str("path", r.URL.Path).Msg("internal error")
	return &appError{Code: codeInternal, Message: "internal error"}
}

// writeJSON answers v as JSON with the given status. Device answers are
// never cached: they change with each publish.
func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status, b = http.StatusInternalServerError, []byte(`{"error":"internal","message":"internal error"}`)
	}
	writeRaw(w, status, append(b, '\n'))
}

// writeRaw answers the concatenation of body's parts, unchanged.
func writeRaw(w http.ResponseWriter, status int, body ...[]byte) {
	n := 0
	for _, b := range body {
		n += len(b)
	}
	writeHeader(w, status, n)
	for _, b := range body {
		w.Write(b)
	}
}

// The values of the headers of every JSON answer, shared by all answers:
// net/http only reads them.
var (
	jsonType = []string{"application/json; charset=utf-8"}
	noStore  = []string{"no-store"}
	noSniff  = []string{"nosniff"}
)

// writeHeader sends the status and headers of a JSON answer of size bytes.
// It sets the header map's canonical keys directly, which saves an
// allocation per header on the devices' hot path.
func writeHeader(w http.ResponseWriter, status, size int) {
	h := w.Header()
	h["Content-Type"] = jsonType
	h["Cache-Control"] = noStore
	h["X-Content-Type-Options"] = noSniff
	h["Content-Length"] = []string{strconv.Itoa(size)}
	w.WriteHeader(status)
}

// record stores evs in the state and returns once they are committed. A
// failure to store is unavailable: the device sends them again later.
func (s *Server) record(ctx context.Context, evs ...state.Event) error {
	err := s.state.Record(ctx, evs...)
	if err != nil && ctx.Err() == nil {
		return &appError{Code: codeUnavailable, Message: "events cannot be stored right now; send them again later", Err: err}
	}
	return err
}
