package publish

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"strconv"
	"time"

	"github.com/cartona/deploy/manifest"
	"github.com/cartona/deploy/store"
)

// ErrNoACL reports a store without acl.json: nobody may publish yet, or
// the store URL names the wrong place. ReadACL's error wraps it and names
// the store.
var ErrNoACL = errors.New("the store has no ACL")

// ReadACL reads acl.json and verifies it against trust. It returns the ACL
// and the ETag to pass to a compare-and-swap write.
func ReadACL(ctx context.Context, s store.Store, trust manifest.Trust) (*manifest.ACL, string, error) {
	data, info, err := store.ReadSmall(ctx, s, manifest.ACLKey, manifest.MaxACLSize)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, "", fmt.Errorf("%s does not exist: %w; check store=, or have an administrator create the store with `deploy init`", s.Location(manifest.ACLKey), ErrNoACL)
	}
	if err != nil {
		return nil, "", err
	}
	acl, err := trust.VerifyACL(data, 0)
	if manifest.RuleOf(err) == manifest.RuleMalformed {
		// Root-signed (signatures are checked before the payload is read),
		// but maybe with a version the format refuses.
		if v, ok := versionPastMax(data); ok {
			return nil, "", &ACLVersionError{Location: s.Location(manifest.ACLKey), Version: v, Malformed: true}
		}
	}
	if err != nil {
		return nil, "", fmt.Errorf("%s does not verify against the pinned root key (%w); check root_key, or ask your administrator", s.Location(manifest.ACLKey), err)
	}
	return acl, info.ETag, nil
}

// InitACL writes the first ACL (version 1), signed by root. It refuses to
// overwrite an existing ACL (fs.ErrExist).
func InitACL(ctx context.Context, s store.Store, root ed25519.PrivateKey, users []manifest.User) (*manifest.ACL, error) {
	acl := &manifest.ACL{Version: 1, Issued: time.Now().UTC().Truncate(time.Second), Users: users}
	data, err := signACL(acl, root)
	if err != nil {
		return nil, err
	}
	_, err = s.Put(ctx, manifest.ACLKey, bytes.NewReader(data), store.PutOptions{CreateOnly: true, ContentType: "application/json", CacheControl: shortCache})
	if errors.Is(err, fs.ErrExist) {
		return nil, fmt.Errorf("%s already exists: %w; change it with `deploy grant` or `deploy acl apply`", s.Location(manifest.ACLKey), fs.ErrExist)
	}
	if err != nil {
		return nil, err
	}
	return acl, nil
}

// UpdateACL reads and verifies the ACL, lets change edit it, raises its
// version, signs it with root and writes it back with compare-and-swap,
// retrying from a fresh read if another administrator wrote meanwhile.
// If change reports no change (false), nothing is written. An ACL at
// [manifest.MaxSequence] is refused rather than wrapped.
func UpdateACL(ctx context.Context, s store.Store, root ed25519.PrivateKey, change func(*manifest.ACL) (bool, error)) (*manifest.ACL, bool, error) {
	acl, changed, err := updateACL(ctx, s, manifest.Trust{Roots: []ed25519.PublicKey{manifest.Public(root)}}, []ed25519.PrivateKey{root}, change)
	if manifest.RuleOf(err) == manifest.RuleACLUntrusted {
		// The root checked against is the signing root, not root_key=.
		err = fmt.Errorf("%s is not signed by the root key you sign with (%w); after a root rotation, pass the new root's key file with root_key_file=", s.Location(manifest.ACLKey), &manifest.Error{Rule: manifest.RuleACLUntrusted, Detail: "root " + manifest.FormatPublicKey(manifest.Public(root)) + " is not among its signers"})
	}
	return acl, changed, err
}

// ResignACL moves the ACL to other root keys: it reads the ACL, verifies it
// against trust (the roots pinned now), raises its version and writes it
// signed by each of roots, with compare-and-swap. Verifiers that pin none
// of roots refuse it from then on.
func ResignACL(ctx context.Context, s store.Store, trust manifest.Trust, roots []ed25519.PrivateKey) (*manifest.ACL, error) {
	acl, _, err := updateACL(ctx, s, trust, roots, func(*manifest.ACL) (bool, error) { return true, nil })
	return acl, err
}

// updateACL is [UpdateACL] with the ACL read verified against trust and
// written signed by each of roots.
func updateACL(ctx context.Context, s store.Store, trust manifest.Trust, roots []ed25519.PrivateKey, change func(*manifest.ACL) (bool, error)) (*manifest.ACL, bool, error) {
	type outcome struct {
		acl     *manifest.ACL
		changed bool
	}
	out, err := retry(ctx, s.Location(manifest.ACLKey), func() (outcome, error) {
		acl, etag, err := ReadACL(ctx, s, trust)
		if err != nil {
			return outcome{}, err
		}
		changed, err := change(acl)
		if err != nil || !changed {
			return outcome{acl, false}, err
		}
		if acl.Version >= manifest.MaxSequence {
			return outcome{}, &ACLVersionError{Location: s.Location(manifest.ACLKey), Version: strconv.FormatInt(acl.Version, 10)}
		}
		acl.Version++
		acl.Issued = time.Now().UTC().Truncate(time.Second)
		data, err := signACL(acl, roots...)
		if err != nil {
			return outcome{}, err
		}
		_, err = s.Put(ctx, manifest.ACLKey, bytes.NewReader(data), store.PutOptions{IfMatch: etag, ContentType: "application/json", CacheControl: shortCache})
		return outcome{acl, true}, err
	})
	if err != nil {
		return nil, false, err
	}
	return out.acl, out.changed, nil
}

// ACLVersionError reports an acl.json whose version cannot grow: at
// [manifest.MaxSequence], the most the format allows, or past it (an ACL
// every verifier refuses as malformed). deploy raises the version by one
// per change, so such an ACL was written by other means, with a pinned
// root key.
type ACLVersionError struct {
	Location string // of acl.json
	Version  string // in decimal, as written
	// Malformed is set when Version is past the format's maximum.
	Malformed bool
}

func (e *ACLVersionError) Error() string {
	max := strconv.FormatInt(manifest.MaxSequence, 10)
	state := fmt.Sprintf("is at version %s, the most the format allows, so the ACL cannot change any more", e.Version)
	restore := "verifiers that already read this version refuse any lower one, so do it at once"
	if e.Malformed {
		state = fmt.Sprintf("is at version %s, above %s, the most the format allows: every verifier refuses it as malformed and keeps the last ACL it accepted, and deploy cannot change it", e.Version, max)
		restore = "no verifier accepted this one, so they all take the restored ACL"
	}
	return fmt.Sprintf("%s %s; nothing was changed. deploy raises the version by one per change and never writes this one: this acl.json was signed with a pinned root key by other means. "+
		"To recover, restore the last acl.json you trust, from your backup or the store's object history (%s); then, unless you wrote this one yourself, someone else holds the root key: "+
		"rotate it with `deploy acl resign new_root_key_file=new-root.key` (docs/key-rotation.md, \"An ACL at the highest version\")", e.Location, state, restore)
}

// versionPastMax returns the version of an ACL envelope's payload when it
// is an integer above [manifest.MaxSequence], read without the strict
// rules.
func versionPastMax(data []byte) (string, bool) {
	var env manifest.Envelope
	var payload struct{ Version json.Number }
	if json.Unmarshal(data, &env) != nil || json.Unmarshal(env.Payload, &payload) != nil {
		return "", false
	}
	v, ok := new(big.Int).SetString(payload.Version.String(), 10)
	return payload.Version.String(), ok && v.Cmp(big.NewInt(manifest.MaxSequence)) > 0
}

// signACL signs acl with each of roots and refuses an envelope over the
// size that verifiers accept.
func signACL(acl *manifest.ACL, roots ...ed25519.PrivateKey) ([]byte, error) {
	env, err := manifest.Sign(manifest.TypeACL, acl, roots...)
	if err != nil {
		return nil, err
	}
	data := env.Marshal()
	if len(data) > manifest.MaxACLSize {
		return nil, fmt.Errorf("the ACL would be %d bytes, over the %d bytes that verifiers accept; remove users or keys; nothing was written", len(data), manifest.MaxACLSize)
	}
	return data, nil
}
