package dashboard

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// CookieName is the session cookie. The __Host- prefix makes the browser
// accept it only with Secure, Path=/ and no Domain.
const CookieName = "__Host-deploy_session"

// SessionTTL is how long a sign-in lasts.
const SessionTTL = 12 * time.Hour

// sessions signs and checks session cookies. A cookie holds its expiry, a
// random id and an HMAC of both under a key derived from the token, never
// the token itself: changing the token ends every session. Signing out
// ends a session on this tracker (other trackers sharing the token keep
// it until it expires).
type sessions struct {
	token []byte
	key   []byte
	now   func() time.Time

	mu      sync.Mutex
	revoked map[string]int64 // signed-out sessions, with their expiry (Unix)
}

func newSessions(token string, now func() time.Time) *sessions {
	m := hmac.New(sha256.New, []byte(token))
	m.Write([]byte("deploy dashboard session key v2"))
	return &sessions{token: []byte(token), key: m.Sum(nil), now: now, revoked: map[string]int64{}}
}

// tokenOK compares a presented token with the configured one in constant
// time. An empty configured token matches nothing.
func (s *sessions) tokenOK(presented string) bool {
	return len(s.token) > 0 && subtle.ConstantTimeCompare([]byte(presented), s.token) == 1
}

func (s *sessions) mac(body string) string {
	m := hmac.New(sha256.New, s.key)
	m.Write([]byte(body))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// issue returns a new session cookie value: "v2.<expiry unix>.<id>.<mac>".
func (s *sessions) issue() string {
	id := make([]byte, 16)
	rand.Read(id)
	body := "v2." + strconv.FormatInt(s.now().Add(SessionTTL).Unix(), 10) + "." + base64.RawURLEncoding.EncodeToString(id)
	return body + "." + s.mac(body)
}

// expiry returns the expiry of v if it is a session this token issued
// that has not expired and was not signed out.
func (s *sessions) expiry(v string) (int64, bool) {
	i := strings.LastIndexByte(v, '.')
	if i < 0 || len(s.token) == 0 || !strings.HasPrefix(v, "v2.") || !hmac.Equal([]byte(v[i+1:]), []byte(s.mac(v[:i]))) {
		return 0, false
	}
	exp, _, _ := strings.Cut(v[len("v2."):], ".")
	unix, err := strconv.ParseInt(exp, 10, 64)
	if err != nil || s.now().Unix() >= unix {
		return 0, false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	_, out := s.revoked[v]
	return unix, !out
}

// valid reports whether v is a live session (see expiry).
func (s *sessions) valid(v string) bool {
	_, ok := s.expiry(v)
	return ok
}

// revoke ends session v, if it is live, and forgets the sessions signed
// out that have expired since.
func (s *sessions) revoke(v string) {
	exp, ok := s.expiry(v)
	if !ok {
		return
	}
	now := s.now().Unix()
	s.mu.Lock()
	defer s.mu.Unlock()
	for k, e := range s.revoked {
		if e <= now {
			delete(s.revoked, k)
		}
	}
	s.revoked[v] = exp
}

// cookieOK reports whether r carries a valid session cookie.
func (s *sessions) cookieOK(r *http.Request) bool {
	c, err := r.Cookie(CookieName)
	return err == nil && s.valid(c.Value)
}

// cookie is the session cookie set at sign-in (value and max age) or
// cleared at sign-out (empty value, negative max age).
func cookie(value string, maxAge int) *http.Cookie {
	return &http.Cookie{Name: CookieName, Value: value, Path: "/", MaxAge: maxAge,
		Secure: true, HttpOnly: true, SameSite: http.SameSiteStrictMode}
}
