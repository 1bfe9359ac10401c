package manifest

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"

	"go.yaml.in/yaml/v3"
)

// The rules an administrator's edit of the ACL must keep. Verifiers check
// signatures and grants; these functions keep deploy from writing an ACL
// that is ambiguous or that silently undoes someone else's change.

// SetGrant changes one grant in acl: upload true grants name the app (app
// [AllApps] for every app), false takes it back. A new user needs key; a new
// key is added to the user. It reports whether anything changed, and
// refuses an edit that leaves the ACL invalid (see [ACL.Validate]).
func (a *ACL) SetGrant(name, app, key string, upload bool) (bool, error) {
	u := a.User(name)
	if u == nil {
		if !upload {
			return false, nil
		}
		if key == "" {
			return false, fmt.Errorf("%s is not in the ACL yet; add key=<their public key> (they print it with `deploy keys show`)", name)
		}
		a.Users = append(a.Users, User{Name: name})
		u = &a.Users[len(a.Users)-1]
	}
	changed := false
	if key != "" && !slices.Contains(u.Keys, key) {
		u.Keys = append(u.Keys, key)
		changed = true
	}
	if g, ok := u.Grants[app]; upload && !g.CanUpload {
		if u.Grants == nil {
			u.Grants = map[string]Grant{}
		}
		g.CanUpload = true
		u.Grants[app] = g
		changed = true
	} else if !upload && ok && (g.CanUpload || !g.CanHalt) {
		// A grant left with can_halt only keeps it.
		if g.CanUpload = false; g.CanHalt {
			u.Grants[app] = g
		} else {
			delete(u.Grants, app)
		}
		changed = true
	}
	if !upload && app != AllApps && u.Grants[AllApps].CanUpload {
		return false, fmt.Errorf("%s may upload to every app (app=*), %s included; take that back with `deploy revoke username=%s app=*`", name, app, name)
	}
	if err := a.Validate(); err != nil {
		return false, err
	}
	return changed, nil
}

// Validate checks what a signature cannot: well-formed user and app names,
// one entry per user, at least one canonical key per user, and no key
// listed under two users (a signature must name one uploader).
func (a *ACL) Validate() error {
	users := map[string]bool{}
	owner := map[string]string{}
	for i, u := range a.Users {
		if err := CheckName("user", u.Name); err != nil {
			return fmt.Errorf("user %d: %w", i+1, err)
		}
		if users[u.Name] {
			return fmt.Errorf("user %q appears twice; merge the entries", u.Name)
		}
		users[u.Name] = true
		if len(u.Keys) == 0 {
			return fmt.Errorf("user %q has no keys; add the key they print with `deploy keys show`", u.Name)
		}
		for _, k := range u.Keys {
			pk, err := ParsePublicKey(k)
			if err != nil {
				return fmt.Errorf("user %q: %w", u.Name, err)
			}
			if k != FormatPublicKey(pk) {
				return fmt.Errorf("user %q: key %q is not in canonical form; write %s", u.Name, k, FormatPublicKey(pk))
			}
			if other, ok := owner[k]; ok && other != u.Name {
				return fmt.Errorf("key %s is listed under both %s and %s; each key belongs to one user", k, other, u.Name)
			}
			owner[k] = u.Name
		}
		for app := range u.Grants {
			if app != AllApps {
				if err := CheckName("app", app); err != nil {
					return fmt.Errorf("user %q: %w", u.Name, err)
				}
			}
		}
	}
	return nil
}

// ChangeKind is what an [ACLChange] is about.
type ChangeKind string

const (
	ChangeUser  ChangeKind = "user"       // a user added or removed
	ChangeKey   ChangeKind = "key"        // one of a user's keys
	ChangeGrant ChangeKind = "can_upload" // a user's upload right to an app
	ChangeHalt  ChangeKind = "can_halt"   // a user's right to halt an app's rollouts
)

// ACLChange is one difference between two ACLs.
type ACLChange struct {
	Added bool       // false: removed
	Kind  ChangeKind //
	User  string     //
	Value string     // the key or the app; empty for ChangeUser
}

// String is the change as `deploy acl apply` shows it: "+ user ahmed",
// "- ahmed key ed25519:...", "+ ahmed can_upload retailer".
func (c ACLChange) String() string {
	sign := "-"
	if c.Added {
		sign = "+"
	}
	if c.Kind == ChangeUser {
		return sign + " user " + c.User
	}
	return fmt.Sprintf("%s %s %s %s", sign, c.User, c.Kind, c.Value)
}

// DiffACL lists what changes from the users old to the users new: per user
// of new, in order, the user, keys and grants added and removed; then the
// users removed.
func DiffACL(old, new []User) []ACLChange {
	var out []ACLChange
	find := func(us []User, name string) *User {
		for i := range us {
			if us[i].Name == name {
				return &us[i]
			}
		}
		return nil
	}
	for _, n := range new {
		o := find(old, n.Name)
		if o == nil {
			out = append(out, ACLChange{Added: true, Kind: ChangeUser, User: n.Name})
			o = &User{}
		}
		out = append(out, diffSet(n.Name, ChangeKey, o.Keys, n.Keys)...)
		out = append(out, diffSet(n.Name, ChangeGrant, appsWith(o.Grants, ChangeGrant), appsWith(n.Grants, ChangeGrant))...)
		out = append(out, diffSet(n.Name, ChangeHalt, appsWith(o.Grants, ChangeHalt), appsWith(n.Grants, ChangeHalt))...)
	}
	for _, o := range old {
		if find(new, o.Name) == nil {
			out = append(out, ACLChange{Kind: ChangeUser, User: o.Name})
		}
	}
	return out
}

// diffSet lists the values added to and removed from a user's old list.
func diffSet(user string, kind ChangeKind, old, new []string) []ACLChange {
	var out []ACLChange
	for _, v := range new {
		if !slices.Contains(old, v) {
			out = append(out, ACLChange{Added: true, Kind: kind, User: user, Value: v})
		}
	}
	for _, v := range old {
		if !slices.Contains(new, v) {
			out = append(out, ACLChange{Kind: kind, User: user, Value: v})
		}
	}
	return out
}

// appsWith returns the apps whose grant allows kind (ChangeGrant or
// ChangeHalt), sorted.
func appsWith(grants map[string]Grant, kind ChangeKind) []string {
	var apps []string
	for _, app := range slices.Sorted(maps.Keys(grants)) {
		if g := grants[app]; kind == ChangeGrant && g.CanUpload || kind == ChangeHalt && g.CanHalt {
			apps = append(apps, app)
		}
	}
	return apps
}

// ACLFile is the YAML form of the ACL that administrators keep in a
// repository: `deploy acl export` writes it, `deploy acl apply` reads it.
// Version is the ACL version it was exported from (0: written by hand).
type ACLFile struct {
	Version int64
	Users   []User
}

// The YAML shape of [ACLFile]; strictBool takes only true and false.
type (
	yamlACL struct {
		Version int64      `yaml:"version,omitempty"`
		Users   []yamlUser `yaml:"users"`
	}
	yamlUser struct {
		Name   string               `yaml:"name"`
		Keys   []string             `yaml:"keys"`
		Grants map[string]yamlGrant `yaml:"grants,omitempty"`
	}
	yamlGrant struct {
		CanUpload bool `yaml:"can_upload,omitempty"`
		CanHalt   bool `yaml:"can_halt,omitempty"`
	}
)

// UnmarshalYAML reads can_upload and can_halt, refusing other fields, the
// YAML 1.1 booleans (yes, y, on...) and quoted strings that yaml.v3 would
// otherwise take as a bool.
func (g *yamlGrant) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.MappingNode {
		return fmt.Errorf("line %d: a grant is a mapping such as {can_upload: true}", n.Line)
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		key, v := n.Content[i].Value, n.Content[i+1]
		var field *bool
		switch key {
		case "can_upload":
			field = &g.CanUpload
		case "can_halt":
			field = &g.CanHalt
		default:
			return fmt.Errorf("line %d: field %s not found in a grant; use can_upload or can_halt", n.Content[i].Line, key)
		}
		if v.Kind != yaml.ScalarNode || v.Style&(yaml.DoubleQuotedStyle|yaml.SingleQuotedStyle) != 0 || (v.Value != "true" && v.Value != "false") {
			return fmt.Errorf("line %d: %s is %q; write true or false", v.Line, key, v.Value)
		}
		*field = v.Value == "true"
	}
	return nil
}

// MarshalACLFile writes acl as a commented YAML file.
func MarshalACLFile(acl *ACL) ([]byte, error) {
	f := yamlACL{Version: acl.Version, Users: []yamlUser{}}
	for _, u := range acl.Users {
		yu := yamlUser{Name: u.Name, Keys: u.Keys}
		for app, g := range u.Grants {
			if yu.Grants == nil {
				yu.Grants = map[string]yamlGrant{}
			}
			yu.Grants[app] = yamlGrant(g)
		}
		f.Users = append(f.Users, yu)
	}
	var b bytes.Buffer
	b.WriteString("# deploy ACL. Edit, then: deploy acl apply file=<this file>\n# grants: app name (or \"*\" for every app) -> can_upload, can_halt (a tracker's key)\n")
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(f); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// ParseACLFile reads a YAML ACL strictly: unknown fields, booleans other
// than true and false, and an ACL that fails [ACL.Validate] are refused.
// Keys come back canonical; a grant with neither can_upload nor can_halt
// is dropped.
func ParseACLFile(data []byte) (*ACLFile, error) {
	var f yamlACL
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&f); errors.Is(err, io.EOF) {
		return nil, errors.New("the file is empty; start from `deploy acl export`")
	} else if err != nil {
		return nil, err
	}
	out := &ACLFile{Version: f.Version, Users: []User{}}
	for _, yu := range f.Users {
		u := User{Name: yu.Name, Keys: make([]string, 0, len(yu.Keys))}
		for _, k := range yu.Keys {
			if pk, err := ParsePublicKey(k); err == nil {
				k = FormatPublicKey(pk)
			}
			u.Keys = append(u.Keys, k)
		}
		for app, g := range yu.Grants {
			if g.CanUpload || g.CanHalt {
				if u.Grants == nil {
					u.Grants = map[string]Grant{}
				}
				u.Grants[app] = Grant(g)
			}
		}
		out.Users = append(out.Users, u)
	}
	if err := (&ACL{Users: out.Users}).Validate(); err != nil {
		return nil, err
	}
	return out, nil
}
