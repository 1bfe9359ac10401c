package tracker

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/cartona/deploy/manifest"
)

// Length limits of free-form fields sent by devices.
const (
	maxDeviceLen  = 128
	maxVersionLen = 128
	maxActionLen  = 64
	maxShortLen   = 64 // platform, plugin version
)

// checkDevice validates a device ID and returns it in lowercase. The plugin
// sends lowercase UUIDs; custom IDs of up to 128 letters, digits and
// ". _ : @ -" are accepted too.
func checkDevice(s string) (string, error) {
	if s == "" {
		return "", errorf(codeInvalid, "missing device id: pass the device's CapacitorUpdater.getDeviceId()")
	}
	if len(s) > maxDeviceLen {
		return "", errorf(codeInvalid, "device id is %d characters long, the limit is %d", len(s), maxDeviceLen)
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
			i > 0 && (c == '.' || c == '_' || c == ':' || c == '@' || c == '-')
		if !ok {
			return "", errorf(codeInvalid, "invalid device id %q: use letters, digits, '.', '_', ':', '@' or '-', starting with a letter or digit", s)
		}
	}
	return strings.ToLower(s), nil
}

// checkName validates an app or channel name with manifest.CheckName.
func checkName(kind, s string) error {
	if s == "" {
		return errorf(codeInvalid, "missing %s name", kind)
	}
	if err := manifest.CheckName(kind, s); err != nil {
		return &appError{Code: codeInvalid, Message: err.Error()}
	}
	return nil
}

// parseBuildID splits a build ID "<app>-<number>" and validates both parts,
// so no crafted ID can reach the store as a key.
func parseBuildID(id string) (app string, n int64, err error) {
	bad := func() (string, int64, error) {
		return "", 0, errorf(codeInvalid, "invalid build id %q: use the id answered by /build/latest, such as \"retailer-12\"", abbrev(id))
	}
	if id == "" {
		return "", 0, errorf(codeInvalid, "missing build id: pass ?id= as answered by /build/latest")
	}
	i := strings.LastIndexByte(id, '-')
	if i <= 0 || i == len(id)-1 || len(id)-i > 19 || id[i+1] == '0' {
		return bad()
	}
	app = id[:i]
	if manifest.CheckName("app", app) != nil {
		return bad()
	}
	n, perr := strconv.ParseInt(id[i+1:], 10, 64)
	if perr != nil || n <= 0 || manifest.BuildID(app, n) != id {
		return bad()
	}
	return app, n, nil
}

// checkAction validates a stats action: 1 to 64 of a-z, 0-9 and '_'.
func checkAction(s string) error {
	if s == "" {
		return errorf(codeInvalid, "missing action")
	}
	if len(s) > maxActionLen {
		return errorf(codeInvalid, "action is %d characters long, the limit is %d", len(s), maxActionLen)
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_') {
			return errorf(codeInvalid, "invalid action %q: use lowercase letters, digits and '_'", abbrev(s))
		}
	}
	return nil
}

// checkVersion validates a bundle version name sent by a device.
func checkVersion(field, s string) error {
	if len(s) > maxVersionLen {
		return errorf(codeInvalid, "%s is %d characters long, the limit is %d", field, len(s), maxVersionLen)
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			return errorf(codeInvalid, "%s contains a control character", field)
		}
	}
	return nil
}

// query returns the only value of a query parameter of r; a repeated
// parameter is an error, so two parts of a stack never read different
// values. It reads the raw query as url.ParseQuery does (a pair with ';' or
// a bad escape is skipped) but builds no map of every parameter, which the
// devices' hot path would pay for on each request.
func query(r *http.Request, name string) (string, error) {
	var val string
	n := 0
	for rest := r.URL.RawQuery; rest != ""; {
		var pair string
		pair, rest, _ = strings.Cut(rest, "&")
		if pair == "" || strings.Contains(pair, ";") {
			continue
		}
		k, v, _ := strings.Cut(pair, "=")
		if k, err := unescapeQuery(k); err != nil || k != name {
			continue
		}
		if v, err := unescapeQuery(v); err == nil {
			val = v
			n++
		}
	}
	if n > 1 {
		return "", errorf(codeInvalid, "parameter %s is given %d times; pass it once", name, n)
	}
	return val, nil
}

func unescapeQuery(s string) (string, error) {
	if strings.ContainsAny(s, "%+") {
		return url.QueryUnescape(s)
	}
	return s, nil
}

// truncate cuts s to at most n bytes, for fields kept only for information.
func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

func abbrev(s string) string {
	if len(s) > 40 {
		return s[:40] + "..."
	}
	return s
}

// text is a JSON field that accepts a string, a number or a boolean (kept
// as its JSON text), or null. Devices differ in how they type fields such as
// version_build; refusing one would make the plugin drop its events.
type text string

func (t *text) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	switch {
	case len(b) == 0:
		return errors.New("empty value")
	case b[0] == '"':
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*t = text(s)
	case string(b) == "null":
		*t = ""
	case b[0] == '{' || b[0] == '[':
		return errors.New("want a string, got an object or array")
	default:
		*t = text(b)
	}
	return nil
}

// appendJSONString appends s as a JSON string, as encoding/json writes it
// but without its reflection: HTML characters, U+2028 and U+2029 escaped,
// control characters as \u00XX, invalid UTF-8 as U+FFFD.
func appendJSONString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	for i, r := range s {
		switch {
		case r >= 0x20 && r < utf8.RuneSelf && r != '"' && r != '\\' && r != '<' && r != '>' && r != '&':
			b = append(b, s[i])
		case r == '"' || r == '\\':
			b = append(b, '\\', byte(r))
		case r < 0x20 || r == '<' || r == '>' || r == '&' || r == '\u2028' || r == '\u2029':
			b = append(b, '\\', 'u', hex[r>>12&15], hex[r>>8&15], hex[r>>4&15], hex[r&15])
		case r == utf8.RuneError:
			b = append(b, `\ufffd`...)
		default:
			b = utf8.AppendRune(b, r)
		}
	}
	return append(b, '"')
}
