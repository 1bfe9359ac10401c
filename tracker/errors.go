package tracker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
)

// Error codes of application errors, the "error" field of an error answer.
// statusOf maps each to its HTTP status; nothing else picks a status.
const (
	codeInvalid      = "invalid_request"
	codeNotFound     = "not_found"
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
	codeMethod:       http.StatusMethodNotAllowed,
	codeTooLarge:     http.StatusRequestEntityTooLarge,
	codeRateLimited:  http.StatusTooManyRequests,
	codeUnauthorized: http.StatusUnauthorized,
	codeForbidden:    http.StatusForbidden,
	codeUnavailable:  http.StatusServiceUnavailable,
	codeInternal:     http.StatusInternalServerError,
}

// ErrorResponse is the body of every error answer of the tracker (except
// the Capgo update endpoint, which answers errors with HTTP 200 as its
// protocol wants).
type ErrorResponse struct {
	Error   string `json:"error"`
	Message string `json:"message"`
}

// appError is an error meant for the client: a code and a message that says
// what to do. Err, if set, is the cause, logged but never shown.
type appError struct {
	Code    string
	Message string
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
	writeJSON(w, status, ErrorResponse{Error: ae.Code, Message: ae.Message})
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
	h := w.Header()
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Length", strconv.Itoa(n))
	w.WriteHeader(status)
	for _, b := range body {
		w.Write(b)
	}
}
