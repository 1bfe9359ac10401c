package manifest_test

import (
	"crypto/ed25519"
	"crypto/rand"
	"reflect"
	"strings"
	"testing"

	"github.com/cartona/deploy/manifest"
)

func newKey(t *testing.T) string {
	t.Helper()
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return manifest.FormatPublicKey(pub)
}

func upload(apps ...string) map[string]manifest.Grant {
	g := map[string]manifest.Grant{}
	for _, a := range apps {
		g[a] = manifest.Grant{CanUpload: true}
	}
	return g
}

func TestSetGrant(t *testing.T) {
	k1, k2 := newKey(t), newKey(t)
	base := func() *manifest.ACL {
		return &manifest.ACL{Version: 3, Users: []manifest.User{
			{Name: "ahmed", Keys: []string{k1}, Grants: upload("retailer")},
			{Name: "bea", Keys: []string{k2}, Grants: upload(manifest.AllApps)},
		}}
	}
	tests := []struct {
		name, user, app, key string
		upload               bool
		changed              bool
		err                  string
		grants               map[string]manifest.Grant // of user, after
		keys                 []string
	}{
		{name: "grant new app", user: "ahmed", app: "shop", upload: true, changed: true, grants: upload("retailer", "shop"), keys: []string{k1}},
		{name: "grant held", user: "ahmed", app: "retailer", upload: true, grants: upload("retailer"), keys: []string{k1}},
		{name: "revoke", user: "ahmed", app: "retailer", changed: true, grants: upload(), keys: []string{k1}},
		{name: "revoke not held", user: "ahmed", app: "shop", grants: upload("retailer"), keys: []string{k1}},
		{name: "revoke unknown user", user: "carol", app: "shop"},
		{name: "new user without key", user: "carol", app: "shop", upload: true, err: "carol is not in the ACL yet; add key="},
		{name: "new user", user: "carol", app: "shop", key: newKey(t), upload: true, changed: true, grants: upload("shop")},
		{name: "revoke one app of app=*", user: "bea", app: "shop", err: "bea may upload to every app (app=*), shop included"},
		{name: "key of another user", user: "ahmed", app: "retailer", key: k2, upload: true, err: "is listed under both ahmed and bea"},
		{name: "bad user name", user: "Carol!", app: "shop", key: newKey(t), upload: true, err: `invalid user name "Carol!"`},
		{name: "bad app name", user: "ahmed", app: "Shop!", upload: true, err: `invalid app name "Shop!"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			acl := base()
			changed, err := acl.SetGrant(tt.user, tt.app, tt.key, tt.upload)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("SetGrant error %v, want one containing %q", err, tt.err)
				}
				return
			}
			if err != nil || changed != tt.changed {
				t.Fatalf("SetGrant = %v, %v; want %v, nil", changed, err, tt.changed)
			}
			u := acl.User(tt.user)
			if tt.grants == nil {
				if u != nil {
					t.Fatalf("user %s added by a revoke", tt.user)
				}
				return
			}
			if !reflect.DeepEqual(u.Grants, tt.grants) && !(len(u.Grants) == 0 && len(tt.grants) == 0) {
				t.Errorf("grants %v, want %v", u.Grants, tt.grants)
			}
			if tt.keys != nil && !reflect.DeepEqual(u.Keys, tt.keys) {
				t.Errorf("keys %v, want %v", u.Keys, tt.keys)
			}
		})
	}
}

func TestValidate(t *testing.T) {
	k1, k2 := newKey(t), newKey(t)
	tests := []struct {
		name  string
		users []manifest.User
		err   string
	}{
		{"empty", nil, ""},
		{"good", []manifest.User{{Name: "ahmed", Keys: []string{k1}, Grants: upload("retailer", manifest.AllApps)}, {Name: "bea", Keys: []string{k2}}}, ""},
		{"bad name", []manifest.User{{Name: "Ahmed", Keys: []string{k1}}}, `invalid user name "Ahmed"`},
		{"twice", []manifest.User{{Name: "ahmed", Keys: []string{k1}}, {Name: "ahmed", Keys: []string{k2}}}, `user "ahmed" appears twice`},
		{"no keys", []manifest.User{{Name: "ahmed"}}, `user "ahmed" has no keys`},
		{"bad key", []manifest.User{{Name: "ahmed", Keys: []string{"ed25519:nope"}}}, "not 32 bytes"},
		{"not canonical", []manifest.User{{Name: "ahmed", Keys: []string{" " + k1}}}, "is not in canonical form; write " + k1},
		{"shared key", []manifest.User{{Name: "ahmed", Keys: []string{k1}}, {Name: "bea", Keys: []string{k2, k1}}}, "listed under both ahmed and bea"},
		{"bad app", []manifest.User{{Name: "ahmed", Keys: []string{k1}, Grants: upload("Retail!")}}, `invalid app name "Retail!"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := (&manifest.ACL{Users: tt.users}).Validate()
			if (err == nil) != (tt.err == "") || (err != nil && !strings.Contains(err.Error(), tt.err)) {
				t.Fatalf("Validate = %v, want %q", err, tt.err)
			}
		})
	}
}

func TestDiffACL(t *testing.T) {
	old := []manifest.User{
		{Name: "ahmed", Keys: []string{"k1"}, Grants: upload("retailer", "shop")},
		{Name: "bea", Keys: []string{"k2"}, Grants: upload("shop")},
	}
	new := []manifest.User{
		{Name: "ahmed", Keys: []string{"k1", "k3"}, Grants: map[string]manifest.Grant{"retailer": {CanUpload: true}, "shop": {}, "news": {CanUpload: true}}},
		{Name: "carol", Keys: []string{"k4"}, Grants: upload(manifest.AllApps)},
	}
	var got []string
	for _, c := range manifest.DiffACL(old, new) {
		got = append(got, c.String())
	}
	want := []string{
		"+ ahmed key k3",
		"+ ahmed can_upload news",
		"- ahmed can_upload shop",
		"+ user carol",
		"+ carol key k4",
		"+ carol can_upload *",
		"- user bea",
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("DiffACL:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if d := manifest.DiffACL(old, old); len(d) != 0 {
		t.Fatalf("DiffACL of the same users: %v", d)
	}
	halter := []manifest.User{{Name: "tracker", Keys: []string{"k"}, Grants: map[string]manifest.Grant{"retailer": {CanHalt: true}}}}
	if d := manifest.DiffACL(halter[:0], halter); len(d) != 3 || d[2] != (manifest.ACLChange{Added: true, Kind: manifest.ChangeHalt, User: "tracker", Value: "retailer"}) {
		t.Fatalf("DiffACL of a can_halt grant: %v", d)
	}
	c := manifest.DiffACL(nil, new[1:])[2]
	if c != (manifest.ACLChange{Added: true, Kind: manifest.ChangeGrant, User: "carol", Value: "*"}) {
		t.Fatalf("typed change %+v", c)
	}
}

func TestACLFile(t *testing.T) {
	k1, k2 := newKey(t), newKey(t)
	k3 := newKey(t)
	acl := &manifest.ACL{Version: 7, Users: []manifest.User{
		{Name: "ahmed", Keys: []string{k1}, Grants: upload("retailer")},
		{Name: "bea", Keys: []string{k2}},
		{Name: "tracker", Keys: []string{k3}, Grants: map[string]manifest.Grant{"retailer": {CanHalt: true}}},
	}}
	data, err := manifest.MarshalACLFile(acl)
	if err != nil {
		t.Fatal(err)
	}
	f, err := manifest.ParseACLFile(data)
	if err != nil {
		t.Fatalf("ParseACLFile of an export: %v\n%s", err, data)
	}
	if f.Version != 7 || !reflect.DeepEqual(f.Users, acl.Users) {
		t.Fatalf("round trip: %+v, want version 7 and %+v", f, acl.Users)
	}

	user := func(grant string) string {
		return "users:\n  - name: ahmed\n    keys: [" + k1 + "]\n    grants:\n      retailer: {can_upload: " + grant + "}\n"
	}
	tests := []struct{ name, yaml, err string }{
		{"true", user("true"), ""},
		{"false drops the grant", user("false"), ""},
		{"yes", user("yes"), `line 5: can_upload is "yes"; write true or false`},
		{"y", user("y"), `can_upload is "y"`},
		{"on", user("on"), `can_upload is "on"`},
		{"off", user("off"), `can_upload is "off"`},
		{"1", user("1"), `can_upload is "1"`},
		{"quoted", user(`"true"`), `can_upload is "true"`},
		{"True", user("True"), `can_upload is "True"`},
		{"unknown field", "users:\n  - name: ahmed\n    key: [" + k1 + "]\n", "field key not found"},
		{"empty", "", "the file is empty"},
		{"shared key", "users:\n  - name: ahmed\n    keys: [" + k1 + "]\n  - name: bea\n    keys: [" + k1 + "]\n", "listed under both ahmed and bea"},
		{"no keys", "users:\n  - name: ahmed\n    keys: []\n", `user "ahmed" has no keys`},
		{"unknown grant field", "users:\n  - name: ahmed\n    keys: [" + k1 + "]\n    grants:\n      retailer: {can_deploy: true}\n", "field can_deploy not found in a grant"},
		{"can_halt yes", "users:\n  - name: ahmed\n    keys: [" + k1 + "]\n    grants:\n      retailer: {can_halt: yes}\n", `can_halt is "yes"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := manifest.ParseACLFile([]byte(tt.yaml))
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("ParseACLFile error %v, want one containing %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got, want := f.Users[0].Grants["retailer"].CanUpload, tt.name == "true"; got != want {
				t.Fatalf("can_upload %v, want %v", got, want)
			}
			if _, ok := f.Users[0].Grants["retailer"]; tt.name != "true" && ok {
				t.Fatal("a grant of can_upload: false is kept")
			}
		})
	}
}

// Granting or revoking upload keeps a user's can_halt.
func TestSetGrantKeepsCanHalt(t *testing.T) {
	k := newKey(t)
	acl := &manifest.ACL{Version: 1, Users: []manifest.User{{Name: "tracker", Keys: []string{k}, Grants: map[string]manifest.Grant{"retailer": {CanHalt: true}}}}}
	if _, err := acl.SetGrant("tracker", "retailer", "", true); err != nil {
		t.Fatal(err)
	}
	if g := acl.User("tracker").Grants["retailer"]; g != (manifest.Grant{CanUpload: true, CanHalt: true}) {
		t.Fatalf("after grant: %+v", g)
	}
	if _, err := acl.SetGrant("tracker", "retailer", "", false); err != nil {
		t.Fatal(err)
	}
	if g := acl.User("tracker").Grants["retailer"]; g != (manifest.Grant{CanHalt: true}) {
		t.Fatalf("after revoke: %+v", g)
	}
}
