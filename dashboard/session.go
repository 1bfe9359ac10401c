package dashboard

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// CookieName is the session cookie. The __Host- prefix makes the browser
// accept it only with Secure, Path=/ and no Domain.
const CookieName = "__Host-deploy_session"

// SessionTTL is how long a sign-in lasts.
const SessionTTL = 12 * time.Hour

// sessions signs and checks session cookies. A cookie holds its expiry and
// an HMAC of it under a key derived from the token, never the token itself:
// changing the token ends every session.
type sessions struct {
	token []byte
	key   []byte
	now   func() time.Time
}

func newSessions(token string, now func() time.Time) *sessions {
	m := hmac.New(sha256.New, []byte(token))
	m.Write([]byte("deploy dashboard session key v1"))
	return &sessions{token: []byte(token), key: m.Sum(nil), now: now}
}

// tokenOK compares a presented token with the configured one in constant
// time. An empty configured token matches nothing.
func (s *sessions) tokenOK(presented string) bool {
	return len(s.token) > 0 && subtle.ConstantTimeCompare([]byte(presented), s.token) == 1
}

func (s *sessions) mac(expires string) string {
	m := hmac.New(sha256.New, s.key)
	m.Write([]byte("v1." + expires))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// issue returns a new session cookie value: "v1.<expiry unix>.<mac>".
func (s *sessions) issue() string {
	exp := strconv.FormatInt(s.now().Add(SessionTTL).Unix(), 10)
	return "v1." + exp + "." + s.mac(exp)
}

// valid reports whether v is a session this token issued that has not
// expired.
func (s *sessions) valid(v string) bool {
	rest, ok := strings.CutPrefix(v, "v1.")
	exp, mac, ok2 := strings.Cut(rest, ".")
	if !ok || !ok2 || len(s.token) == 0 {
		return false
	}
	if !hmac.Equal([]byte(mac), []byte(s.mac(exp))) {
		return false
	}
	unix, err := strconv.ParseInt(exp, 10, 64)
	return err == nil && s.now().Unix() < unix
}

// authorized reports whether r carries the token as a bearer token (for
// scripts) or a valid session cookie (for the browser).
func (s *sessions) authorized(r *http.Request) bool {
	if token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok {
		return s.tokenOK(strings.TrimSpace(token))
	}
	c, err := r.Cookie(CookieName)
	return err == nil && s.valid(c.Value)
}

// cookie is the session cookie set at sign-in (value and max age) or
// cleared at sign-out (empty value, negative max age).
func cookie(value string, maxAge int) *http.Cookie {
	return &http.Cookie{Name: CookieName, Value: value, Path: "/", MaxAge: maxAge,
		Secure: true, HttpOnly: true, SameSite: http.SameSiteStrictMode}
}
