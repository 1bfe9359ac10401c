package manifest

import (
	"encoding/base64"
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf16"
	"unicode/utf8"
)

// MaxInt is the largest integer a payload may carry (2^53-1, the largest
// integer JavaScript represents exactly). Sequences, ACL versions and build
// numbers never go past it: publish refuses to write a larger one.
const MaxInt = 1<<53 - 1

// maxDepth is how deeply arrays and objects may nest in a signed document.
const maxDepth = 64

// TimeFormat is the one written form of a time: RFC 3339 in UTC, with an
// optional fraction of 1 to 9 digits (what time.RFC3339Nano gives in UTC).
var timeRE = regexp.MustCompile(`^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,9})?Z$`)

var intRE = regexp.MustCompile(`^(0|[1-9][0-9]{0,15})$`)

// node is a parsed JSON value: exactly one of its fields describes it.
type node struct {
	kind  byte // 'o' object, 'a' array, 's' string, 'n' number, 'b' boolean
	text  string
	items []node
	keys  []string
}

// decodeStrict decodes data, one JSON value, into v (a pointer) under the
// format's decoding rules (docs/format.md, "Decoding rules").
func decodeStrict(data []byte, v any) error {
	if !utf8.Valid(data) {
		return errors.New("not valid UTF-8")
	}
	p := &parser{s: string(data)}
	p.ws()
	n, err := p.value(0)
	if err != nil {
		return err
	}
	if p.ws(); p.i < len(p.s) {
		return fmt.Errorf("data after the JSON value at offset %d", p.i)
	}
	return decodeNode(n, reflect.ValueOf(v).Elem(), "")
}

type parser struct {
	s string
	i int
}

func (p *parser) ws() {
	for p.i < len(p.s) && strings.IndexByte(" \t\n\r", p.s[p.i]) >= 0 {
		p.i++
	}
}

func (p *parser) fail(what string) error { return fmt.Errorf("%s at offset %d", what, p.i) }

// numberLen is the length of the JSON number that s starts with
// (-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?), or 0.
func numberLen(s string) int {
	digits := func(i int) int {
		for i < len(s) && '0' <= s[i] && s[i] <= '9' {
			i++
		}
		return i
	}
	i := 0
	if i < len(s) && s[i] == '-' {
		i++
	}
	switch {
	case i < len(s) && s[i] == '0':
		i++
	case i < len(s) && '1' <= s[i] && s[i] <= '9':
		i = digits(i + 1)
	default:
		return 0
	}
	if i+1 < len(s) && s[i] == '.' && '0' <= s[i+1] && s[i+1] <= '9' {
		i = digits(i + 1)
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		j := i + 1
		if j < len(s) && (s[j] == '+' || s[j] == '-') {
			j++
		}
		if j < len(s) && '0' <= s[j] && s[j] <= '9' {
			i = digits(j)
		}
	}
	return i
}

func (p *parser) value(depth int) (node, error) {
	if p.i >= len(p.s) {
		return node{}, p.fail("unexpected end of JSON")
	}
	switch c := p.s[p.i]; {
	case c == '{' || c == '[':
		if depth >= maxDepth {
			return node{}, p.fail(fmt.Sprintf("nested more than %d deep", maxDepth))
		}
		return p.container(depth)
	case c == '"':
		s, err := p.str()
		return node{kind: 's', text: s}, err
	case strings.HasPrefix(p.s[p.i:], "true"):
		p.i += 4
		return node{kind: 'b', text: "true"}, nil
	case strings.HasPrefix(p.s[p.i:], "false"):
		p.i += 5
		return node{kind: 'b', text: "false"}, nil
	case strings.HasPrefix(p.s[p.i:], "null"):
		return node{}, p.fail("null is not allowed")
	}
	n := numberLen(p.s[p.i:])
	if n == 0 {
		return node{}, p.fail("invalid value")
	}
	p.i += n
	return node{kind: 'n', text: p.s[p.i-n : p.i]}, nil
}

func (p *parser) container(depth int) (node, error) {
	n := node{kind: 'a'}
	closer := byte(']')
	if p.s[p.i] == '{' {
		n.kind, closer = 'o', '}'
	}
	p.i++
	p.ws()
	if p.i < len(p.s) && p.s[p.i] == closer {
		p.i++
		return n, nil
	}
	var seen map[string]bool // for objects of many keys; fewer are searched
	for {
		if n.kind == 'o' {
			if p.ws(); p.i >= len(p.s) || p.s[p.i] != '"' {
				return n, p.fail("expected a key")
			}
			k, err := p.str()
			if err != nil {
				return n, err
			}
			if n.hasKey(k, &seen) {
				return n, p.fail(fmt.Sprintf("duplicate key %q", k))
			}
			n.keys = append(n.keys, k)
			if p.ws(); p.i >= len(p.s) || p.s[p.i] != ':' {
				return n, p.fail("expected ':'")
			}
			p.i++
		}
		p.ws()
		v, err := p.value(depth + 1)
		if err != nil {
			return n, err
		}
		n.items = append(n.items, v)
		if p.ws(); p.i < len(p.s) && p.s[p.i] == ',' {
			p.i++
			continue
		}
		if p.i < len(p.s) && p.s[p.i] == closer {
			p.i++
			return n, nil
		}
		return n, p.fail(fmt.Sprintf("expected ',' or '%c'", closer))
	}
}

// hasKey reports whether object n has key k, and records k in seen once
// n has many keys.
func (n *node) hasKey(k string, seen *map[string]bool) bool {
	const many = 16
	if len(n.keys) < many {
		return slices.Contains(n.keys, k)
	}
	if *seen == nil {
		*seen = make(map[string]bool, 2*many)
		for _, key := range n.keys {
			(*seen)[key] = true
		}
	}
	if (*seen)[k] {
		return true
	}
	(*seen)[k] = true
	return false
}

// str reads a string, refusing control characters and escapes of lone
// surrogates.
func (p *parser) str() (string, error) {
	// Most strings have no escape: they are a slice of the input.
	for j := p.i + 1; j < len(p.s); j++ {
		if c := p.s[j]; c == '"' {
			s := p.s[p.i+1 : j]
			p.i = j + 1
			return s, nil
		} else if c == '\\' || c < 0x20 {
			break
		}
	}
	var b strings.Builder
	for p.i++; p.i < len(p.s); {
		c := p.s[p.i]
		switch {
		case c == '"':
			p.i++
			return b.String(), nil
		case c < 0x20:
			return "", p.fail("control character in a string")
		case c != '\\':
			b.WriteByte(c)
			p.i++
			continue
		}
		if p.i+1 >= len(p.s) {
			break
		}
		if e := strings.IndexByte(`"\/bfnrt`, p.s[p.i+1]); e >= 0 {
			b.WriteByte("\"\\/\b\f\n\r\t"[e])
			p.i += 2
			continue
		}
		r, err := p.unicodeEscape()
		if err != nil {
			return "", err
		}
		b.WriteRune(r)
	}
	return "", p.fail("unterminated string")
}

func (p *parser) unicodeEscape() (rune, error) {
	hex4 := func() (rune, bool) {
		if p.i+6 > len(p.s) || p.s[p.i+1] != 'u' {
			return 0, false
		}
		v, err := strconv.ParseUint(p.s[p.i+2:p.i+6], 16, 16)
		p.i += 6
		return rune(v), err == nil
	}
	r, ok := hex4()
	switch {
	case !ok:
		return 0, p.fail("invalid escape")
	case r >= 0xdc00 && r < 0xe000:
		return 0, p.fail("lone surrogate escape")
	case r < 0xd800 || r >= 0xe000:
		return r, nil
	}
	lo, ok := hex4()
	if !ok || lo < 0xdc00 || lo >= 0xe000 {
		return 0, p.fail("lone surrogate escape")
	}
	return utf16.DecodeRune(r, lo), nil
}

var (
	timeType  = reflect.TypeFor[time.Time]()
	bytesType = reflect.TypeFor[[]byte]()
)

// decodeNode stores n in v, whose type says what n must be.
func decodeNode(n node, v reflect.Value, path string) error {
	want := func(what string) error {
		if path == "" {
			return fmt.Errorf("the document: want %s", what)
		}
		return fmt.Errorf("%s: want %s", strings.TrimPrefix(path, "."), what)
	}
	switch {
	case v.Type() == timeType:
		t, err := parseTime(n)
		if err != nil {
			return want("a time written as YYYY-MM-DDTHH:MM:SS[.fraction]Z")
		}
		v.Set(reflect.ValueOf(t))
		return nil
	case v.Type() == bytesType:
		b, err := base64.StdEncoding.Strict().DecodeString(n.text)
		if n.kind != 's' || err != nil || strings.ContainsAny(n.text, "\r\n") {
			return want("standard padded base64")
		}
		v.SetBytes(b)
		return nil
	}
	switch v.Kind() {
	case reflect.String:
		if n.kind != 's' {
			return want("a string")
		}
		v.SetString(n.text)
	case reflect.Bool:
		if n.kind != 'b' {
			return want("true or false")
		}
		v.SetBool(n.text == "true")
	case reflect.Int64:
		i, err := strconv.ParseInt(n.text, 10, 64)
		if n.kind != 'n' || !intRE.MatchString(n.text) || err != nil || i > MaxInt {
			return want(fmt.Sprintf("an integer from 0 to %d", int64(MaxInt)))
		}
		v.SetInt(i)
	case reflect.Pointer:
		v.Set(reflect.New(v.Type().Elem()))
		return decodeNode(n, v.Elem(), path)
	case reflect.Slice:
		return decodeSlice(n, v, path, want)
	case reflect.Map:
		if n.kind != 'o' {
			return want("an object")
		}
		v.Set(reflect.MakeMapWithSize(v.Type(), len(n.keys)))
		for i, k := range n.keys {
			e := reflect.New(v.Type().Elem()).Elem()
			if err := decodeNode(n.items[i], e, path+"."+k); err != nil {
				return err
			}
			v.SetMapIndex(reflect.ValueOf(k), e)
		}
	case reflect.Struct:
		return decodeStruct(n, v, path, want)
	default:
		return want("nothing: this field cannot be decoded")
	}
	return nil
}

func decodeSlice(n node, v reflect.Value, path string, want func(string) error) error {
	if n.kind != 'a' {
		return want("an array")
	}
	s := reflect.MakeSlice(v.Type(), len(n.items), len(n.items))
	for i, item := range n.items {
		if err := decodeNode(item, s.Index(i), fmt.Sprintf("%s[%d]", path, i)); err != nil {
			return err
		}
	}
	v.Set(s)
	return nil
}

func decodeStruct(n node, v reflect.Value, path string, want func(string) error) error {
	if n.kind != 'o' {
		return want("an object")
	}
	fields := fieldsOf(v.Type())
	required := 0
	for i, k := range n.keys {
		f, ok := fields.byName[k]
		if !ok {
			if folded := foldedField(fields.byName, k); folded != "" {
				return fmt.Errorf("%s: key %q is not %q: field names are case-sensitive", strings.TrimPrefix(path, "."), k, folded)
			}
			continue // unknown keys are ignored
		}
		if !f.optional {
			required++ // keys are unique
		}
		if err := decodeNode(n.items[i], v.FieldByIndex(f.index), path+"."+k); err != nil {
			return err
		}
	}
	if required == fields.required {
		return nil
	}
	for name, f := range fields.byName {
		if !f.optional && !slices.Contains(n.keys, name) {
			return fmt.Errorf("%s: missing field %q", strings.TrimPrefix(path, "."), name)
		}
	}
	return nil
}

type field struct {
	index    []int
	optional bool
}

// fields are a struct type's fields by JSON name, and how many of them
// are required.
type fields struct {
	byName   map[string]field
	required int
}

// fieldCache holds the fields of each struct type decoded.
var fieldCache sync.Map // reflect.Type → *fields

// fieldsOf maps the JSON names of t's fields (embedded structs flattened)
// to where they are; a field tagged omitempty or omitzero is optional.
func fieldsOf(t reflect.Type) *fields {
	if fs, ok := fieldCache.Load(t); ok {
		return fs.(*fields)
	}
	fs := &fields{byName: map[string]field{}}
	for _, f := range reflect.VisibleFields(t) {
		tag := f.Tag.Get("json")
		if tag == "" || tag == "-" || !f.IsExported() {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		optional := strings.Contains(opts, "omitempty") || strings.Contains(opts, "omitzero")
		fs.byName[name] = field{f.Index, optional}
	}
	for _, f := range fs.byName {
		if !f.optional {
			fs.required++
		}
	}
	fieldCache.Store(t, fs)
	return fs
}

// foldedField returns the field name that k equals when ASCII letters are
// compared case-insensitively and U+212A and U+017F are read as k and s, or "".
func foldedField(fields map[string]field, k string) string {
	k = strings.NewReplacer("\u212a", "k", "\u017f", "s").Replace(k)
	for name := range fields {
		if asciiLower(k) == asciiLower(name) {
			return name
		}
	}
	return ""
}

// asciiLower maps A-Z to a-z and leaves every other byte alone.
func asciiLower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}

func parseTime(n node) (time.Time, error) {
	if n.kind != 's' || !timeRE.MatchString(n.text) {
		return time.Time{}, errors.New("not a time")
	}
	return time.Parse(time.RFC3339Nano, n.text)
}
