package cli

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"

	"github.com/cartona/deploy/state"
	"github.com/cartona/deploy/state/postgres"
	"github.com/cartona/deploy/state/sqlite"
)

func defaultStateURL() string {
	return "sqlite://" + filepath.ToSlash(filepath.Join(dataDir(), "events.db"))
}

// OpenState opens the tracker state at raw: sqlite:///path, a bare path
// (an SQLite file, as older settings name it) or postgres://... Its errors
// never show a password.
func OpenState(ctx context.Context, raw string, opts state.Options) (state.State, error) {
	if !strings.Contains(raw, "://") {
		if strings.Contains(raw, "=") { // host=... dbname=..., no file name
			return nil, usageError{withHint(errors.New("db is a key=value connection string (host=... dbname=...), which deploy does not read; it takes a URL"),
				"write it as db=postgres://USER:PASSWORD@HOST:PORT/DATABASE, with %-escapes for special characters (@ as %40), or sqlite:///path for an SQLite file")}
		}
		return sqlite.Open(raw, opts)
	}
	u, err := url.Parse(raw)
	if err != nil {
		return nil, usageError{fmt.Errorf("db %q is not a URL; use sqlite:///path or postgres://user@host/database, with %%-escapes in its parts", redactDB(raw))}
	}
	switch u.Scheme {
	case "sqlite":
		p := filepath.FromSlash(u.Path)
		if u.Host != "" && u.Host != "localhost" { // sqlite://./events.db, relative
			p = filepath.FromSlash(u.Host + u.Path)
		}
		return sqlite.Open(p, opts)
	case "postgres", "postgresql":
		db, err := postgres.Open(ctx, raw, opts)
		if msg, ok := unreachableDB(err, u.Host); ok {
			return nil, redactedError{unavailableError{errors.New(msg)}, passwords(raw, u)}
		}
		if errors.Is(err, state.ErrNoDatabase) {
			return nil, redactedError{unavailableError{err}, passwords(raw, u)}
		}
		if errors.Is(err, state.ErrRefused) {
			return nil, redactedError{withHint(fmt.Errorf("db %s: %w", redactDB(raw), err),
				"check the user and password in db=postgres://USER:PASSWORD@HOST:PORT/DATABASE (%-escape special characters, @ as %40), and that the role exists, may log in and may create tables in the database"), passwords(raw, u)}
		}
		if err != nil {
			return nil, redactedError{fmt.Errorf("db %s: %w", redactDB(raw), err), passwords(raw, u)}
		}
		return db, nil
	default:
		return nil, usageError{fmt.Errorf("unknown db scheme %q in %q; use sqlite:///path or postgres://user@host/database", u.Scheme, redactDB(raw))}
	}
}

// unreachableDB says, in one line, why the database at host (as written in
// db=) could not be reached, when err is such a network failure: which
// host, and what to check.
func unreachableDB(err error, host string) (string, bool) {
	var (
		dns *net.DNSError
		op  *net.OpError
		ne  net.Error
	)
	const check = "; check the host and port in db=postgres://USER:PASSWORD@HOST:PORT/DATABASE"
	switch {
	case err == nil:
		return "", false
	case errors.As(err, &dns) && dns.IsNotFound:
		return fmt.Sprintf("cannot reach the database: no host named %s was found; check the host in db=postgres://USER:PASSWORD@HOST:PORT/DATABASE, and this machine's DNS", dns.Name), true
	case errors.As(err, &dns):
		return fmt.Sprintf("cannot reach the database: looking up %s failed (%s); check this machine's DNS, and the host in db=postgres://USER:PASSWORD@HOST:PORT/DATABASE", dns.Name, dns.Err), true
	case !errors.As(err, &ne):
		return "", false
	}
	if errors.As(err, &op) && op.Addr != nil {
		host = op.Addr.String()
	}
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return fmt.Sprintf("cannot reach the database at %s: the connection was refused%s, and that PostgreSQL runs there and accepts TCP connections", host, check), true
	case ne.Timeout():
		return fmt.Sprintf("cannot reach the database at %s: it did not answer in time%s, and the network and firewalls between", host, check), true
	}
	return fmt.Sprintf("cannot reach the database at %s: the connection failed%s, and the network", host, check), true
}

// The password of a db value, however it is written, is shown as this.
const masked = "xxxxx"

var (
	// kvPassword is the password of a key=value connection string, quoted
	// or not.
	kvPassword = regexp.MustCompile(`(\bpassword\s*=\s*)('(?:[^'\\]|\\.)*'|[^\s']*)`)
	// queryPassword is a URL's password parameter.
	queryPassword = regexp.MustCompile(`([?&]password=)[^&#]*`)
)

// redactDB is the db value raw with its passwords masked: a URL's, in its
// user info or its password parameter, or a key=value string's. It is
// what `deploy config` and messages show of a db value. A URL is masked
// as written, parsed or not: a password with an unescaped #, / or ?
// breaks parsing, or parses into the host.
func redactDB(raw string) string {
	scheme, rest, ok := strings.Cut(raw, "://")
	if !ok {
		return kvPassword.ReplaceAllString(raw, "${1}"+masked)
	}
	if user, _, pw := userInfoPassword(rest); pw != "" {
		rest = user + ":" + masked + rest[strings.LastIndexByte(rest, '@'):]
	}
	return scheme + "://" + queryPassword.ReplaceAllString(rest, "${1}"+masked)
}

// userInfoPassword splits the part of a URL after :// at its user info:
// everything up to the last @, which holds user:password. pw is empty
// when there is no password.
func userInfoPassword(rest string) (user, host, pw string) {
	at := strings.LastIndexByte(rest, '@')
	if at < 0 {
		return "", rest, ""
	}
	user, pw, _ = strings.Cut(rest[:at], ":")
	return user, rest[at+1:], pw
}

// passwords are the passwords of the db URL raw, as written and
// unescaped: what an error from the database driver may quote.
func passwords(raw string, u *url.URL) []string {
	var out []string
	add := func(written string) {
		for _, s := range []string{written, unescape(written)} {
			if s != "" {
				out = append(out, s)
			}
		}
	}
	if _, rest, ok := strings.Cut(raw, "://"); ok {
		if _, _, pw := userInfoPassword(rest); pw != "" {
			add(pw)
		}
	}
	if u != nil {
		for _, p := range strings.Split(u.RawQuery, "&") {
			if k, v, _ := strings.Cut(p, "="); unescape(k) == "password" {
				add(v)
			}
		}
	}
	return out
}

func unescape(s string) string {
	if u, err := url.QueryUnescape(s); err == nil {
		return u
	}
	return s
}

// redactedError is err with the given secrets masked in its message.
type redactedError struct {
	err     error
	secrets []string
}

func (e redactedError) Error() string {
	msg := e.err.Error()
	for _, s := range e.secrets {
		msg = strings.ReplaceAll(msg, s, masked)
	}
	return msg
}

func (e redactedError) Unwrap() error { return e.err }
