package dashboard

import (
	"bytes"
	"embed"
	"fmt"
	"html/template"
	"io/fs"
	"math"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/rs/zerolog"
)

// Path is where the dashboard is served.
const Path = "/dashboard"

// ContentSecurityPolicy is sent with every page of the dashboard: scripts,
// styles, images and API calls come from the tracker itself, nothing is
// inline, nothing may frame it.
const ContentSecurityPolicy = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; " +
	"connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

// files are the pages (web/src) and the built assets (web/dist).
//
//go:embed web/src/index.html web/src/signin.html web/dist
var files embed.FS

// Config is what a Dashboard needs. Source is required.
type Config struct {
	Source Source
	// Token is the stats token: scripts send it as a bearer token, people
	// type it into the sign-in form. Empty disables the dashboard and the
	// API (403).
	Token string
	// Log receives the errors of the Source.
	Log zerolog.Logger
	// ClientAddr is the address that wrong tokens are counted by; the
	// request's remote host if nil.
	ClientAddr func(*http.Request) string
	// Held, if set, is told of each request held back for the wrong
	// tokens its address sent.
	Held func()
	// Now returns the current time; time.Now if nil.
	Now func() time.Time
}

// Dashboard serves the pages under [Path] and the JSON API under /api/.
type Dashboard struct {
	src      Source
	log      zerolog.Logger
	now      func() time.Time
	sessions *sessions
	guard    *guard
	addr     func(*http.Request) string
	held     func()
	assets   fs.FS
	index    []byte
	signin   *template.Template
	disabled bool
}

// New returns a Dashboard. It fails only if the embedded assets are broken.
func New(cfg Config) (*Dashboard, error) {
	now := cfg.Now
	if now == nil {
		now = time.Now
	}
	assets, err := fs.Sub(files, "web/dist")
	if err != nil {
		return nil, err
	}
	index, err := fs.ReadFile(files, "web/src/index.html")
	if err != nil {
		return nil, err
	}
	signin, err := template.ParseFS(files, "web/src/signin.html")
	if err != nil {
		return nil, err
	}
	addr := cfg.ClientAddr
	if addr == nil {
		addr = remoteHost
	}
	return &Dashboard{
		src: cfg.Source, log: cfg.Log, now: now, sessions: newSessions(cfg.Token, now), guard: newGuard(now), addr: addr, held: cfg.Held,
		assets: assets,
		index:  index, signin: signin, disabled: cfg.Token == "",
	}, nil
}

// Register adds the dashboard's routes to mux: the pages under [Path] and
// the API under /api/apps.
func (d *Dashboard) Register(mux *http.ServeMux) {
	mux.HandleFunc("GET "+Path, d.handleIndex)
	mux.HandleFunc("GET "+Path+"/signin", d.handleSignInPage)
	mux.HandleFunc("POST "+Path+"/signin", d.handleSignIn)
	mux.HandleFunc("POST "+Path+"/signout", d.handleSignOut)
	mux.HandleFunc("GET "+Path+"/assets/{file}", d.handleAsset)
	mux.HandleFunc("GET /api/apps", d.api(d.handleApps))
	mux.HandleFunc("GET /api/apps/{app}", d.api(d.handleApp))
	mux.HandleFunc("GET /api/apps/{app}/adoption", d.api(d.handleAdoption))
	mux.HandleFunc("GET /api/apps/{app}/channels/{channel}/history", d.api(d.handleHistory))
}

// Authorize reports whether r carries the token, as "Authorization:
// Bearer <token>" or as the session cookie of a sign-in. An address that
// presented too many wrong tokens is not checked: wait says how long it
// must wait first. Other API routes of the tracker use it too.
func (d *Dashboard) Authorize(r *http.Request) (ok bool, wait time.Duration) {
	if token, bearer := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); bearer {
		return d.try(r, strings.TrimSpace(token))
	}
	return d.sessions.cookieOK(r), 0
}

// try checks a token that r presents, counting it against r's address
// when wrong.
func (d *Dashboard) try(r *http.Request, token string) (ok bool, wait time.Duration) {
	addr := d.addr(r)
	if ok, wait := d.guard.take(addr); !ok {
		if d.held != nil {
			d.held()
		}
		return false, wait
	}
	if d.sessions.tokenOK(token) {
		d.guard.giveBack(addr)
		return true, 0
	}
	return false, 0
}

// RetryIn is the message of a client told to wait, in seconds, the
// number Retry-After carries.
func RetryIn(wait time.Duration) (msg string, secs int) {
	secs = max(1, int(math.Ceil(wait.Seconds())))
	return fmt.Sprintf("too many wrong tokens from this address; retry in %d s", secs), secs
}

func remoteHost(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// pageHeaders are the headers of every page and asset.
func pageHeaders(w http.ResponseWriter, cache string) {
	h := w.Header()
	h.Set("Content-Security-Policy", ContentSecurityPolicy)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "same-origin") // no-referrer would make the form's Origin "null"
	h.Set("Cross-Origin-Opener-Policy", "same-origin")
	h.Set("Cache-Control", cache)
}

// handleIndex answers GET /dashboard: the app, or the sign-in page.
func (d *Dashboard) handleIndex(w http.ResponseWriter, r *http.Request) {
	if !d.sessions.cookieOK(r) {
		http.Redirect(w, r, Path+"/signin", http.StatusSeeOther)
		return
	}
	pageHeaders(w, "no-store")
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Write(d.index)
}

// handleAsset answers GET /dashboard/assets/{file}: the built scripts,
// styles and icon, which hold no data and need no sign-in.
func (d *Dashboard) handleAsset(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("file")
	data, err := fs.ReadFile(d.assets, name)
	if err != nil {
		http.NotFound(w, r)
		return
	}
	pageHeaders(w, "no-cache")
	http.ServeContent(w, r, name, time.Time{}, bytes.NewReader(data))
}

// handleSignInPage answers GET /dashboard/signin.
func (d *Dashboard) handleSignInPage(w http.ResponseWriter, r *http.Request) {
	d.signInPage(w, http.StatusOK, "")
}

func (d *Dashboard) signInPage(w http.ResponseWriter, status int, msg string) {
	if d.disabled {
		status, msg = http.StatusForbidden, "The dashboard is disabled on this tracker: start it with a stats token (deploy serve stats_token=<secret>)."
	}
	pageHeaders(w, "no-store")
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	d.signin.Execute(w, struct{ Error string }{msg})
}

// handleSignIn answers POST /dashboard/signin: the form posts the token;
// the answer sets the session cookie and goes to the dashboard.
func (d *Dashboard) handleSignIn(w http.ResponseWriter, r *http.Request) {
	if !sameOrigin(r) {
		d.signInPage(w, http.StatusForbidden, "Sign in from the tracker's own sign-in page.")
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 4096)
	if err := r.ParseForm(); err != nil {
		d.signInPage(w, http.StatusBadRequest, "The form could not be read; try again.")
		return
	}
	ok, wait := d.try(r, strings.TrimSpace(r.PostForm.Get("token")))
	if wait > 0 {
		_, secs := RetryIn(wait)
		w.Header().Set("Retry-After", strconv.Itoa(secs))
		d.signInPage(w, http.StatusTooManyRequests, fmt.Sprintf("Too many wrong tokens from this address: try again in %d seconds.", secs))
		return
	}
	if !ok {
		d.signInPage(w, http.StatusUnauthorized, "Wrong token. Use the tracker's stats token (stats_token).")
		return
	}
	http.SetCookie(w, cookie(d.sessions.issue(), int(SessionTTL/time.Second)))
	http.Redirect(w, r, Path, http.StatusSeeOther)
}

// handleSignOut answers POST /dashboard/signout: it ends the session and
// clears the cookie.
func (d *Dashboard) handleSignOut(w http.ResponseWriter, r *http.Request) {
	if c, err := r.Cookie(CookieName); err == nil {
		d.sessions.revoke(c.Value)
	}
	http.SetCookie(w, cookie("", -1))
	http.Redirect(w, r, Path+"/signin", http.StatusSeeOther)
}

// sameOrigin refuses a form posted from another page than the tracker's:
// browsers send Sec-Fetch-Site, older ones Origin, with every POST.
func sameOrigin(r *http.Request) bool {
	if site := r.Header.Get("Sec-Fetch-Site"); site != "" {
		return site == "same-origin" || site == "none"
	}
	o := r.Header.Get("Origin")
	if o == "" {
		return true
	}
	u, err := url.Parse(o)
	return err == nil && u.Host == r.Host
}
