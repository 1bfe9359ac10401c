package manifest

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"slices"
	"time"
)

// Rule names the check a verification failed. The same names are the
// verdicts of the test vectors under testdata/vectors, shared with the
// TypeScript verifier.
type Rule string

// The rules, in the order they are checked.
const (
	RuleTooLarge        Rule = "too_large"        // an envelope over its size limit
	RuleMalformed       Rule = "malformed"        // not a valid envelope or payload
	RuleUnsigned        Rule = "unsigned"         // an envelope without signatures
	RuleACLUntrusted    Rule = "acl_untrusted"    // the ACL lacks enough valid root signatures
	RuleACLRollback     Rule = "acl_rollback"     // the ACL is older than one seen before
	RuleBadSignature    Rule = "bad_signature"    // a known key's signature does not verify
	RuleUntrustedKey    Rule = "untrusted_key"    // signed by no key in the ACL
	RuleAppMismatch     Rule = "app_mismatch"     // for another app than asked
	RuleChannelMismatch Rule = "channel_mismatch" // for another channel than asked
	RuleNotGranted      Rule = "not_granted"      // the signer may not upload to this app
	RuleRollback        Rule = "rollback"         // a sequence lower than one seen before
	RuleExpired         Rule = "expired"          // past its expiry time
	RuleBundleMismatch  Rule = "bundle_mismatch"  // bundle bytes differ from the manifest
	RuleFilesMismatch   Rule = "files_mismatch"   // a file manifest or file differs from what was signed
	RuleHistoryGap      Rule = "history_gap"      // a history entry does not link to the one before it
)

// Rules are all the rules, in the order they are checked.
var Rules = []Rule{RuleTooLarge, RuleMalformed, RuleUnsigned, RuleACLUntrusted, RuleACLRollback,
	RuleBadSignature, RuleUntrustedKey, RuleAppMismatch, RuleChannelMismatch, RuleNotGranted,
	RuleRollback, RuleExpired, RuleBundleMismatch, RuleFilesMismatch, RuleHistoryGap}

// Error is a failed verification: which rule, and the details.
type Error struct {
	Rule   Rule
	Detail string
}

func (e *Error) Error() string { return fmt.Sprintf("%s: %s", e.Rule, e.Detail) }

// RuleOf returns the rule of a verification error, or "" for other errors.
func RuleOf(err error) Rule {
	var e *Error
	if errors.As(err, &e) {
		return e.Rule
	}
	return ""
}

// Trust is what a verifier pins: the root public keys and how many of them
// must sign the ACL.
type Trust struct {
	Roots     []ed25519.PublicKey
	Threshold int // 0 means 1
}

// Expect is what the verifier of a latest.json expects: the app and channel
// asked for, the highest ACL version and sequence seen before (0 if none),
// and the current time.
type Expect struct {
	App           string
	Channel       string
	MinACLVersion int64
	MinSequence   int64
	Now           time.Time
}

// VerifyACL checks an acl.json envelope against the root keys and returns
// its payload. minVersion is the highest ACL version seen before.
func (t Trust) VerifyACL(data []byte, minVersion int64) (*ACL, error) {
	env, err := ParseEnvelope(data, TypeACL, MaxACLSize)
	if err != nil {
		return nil, aclErr(err)
	}
	need := max(t.Threshold, 1)
	if got := len(env.SignedBy(t.Roots)); got < need {
		if got == 0 && signedByKnownID(env, t.Roots) {
			return nil, &Error{RuleBadSignature, "acl: a root key's signature does not verify"}
		}
		return nil, &Error{RuleACLUntrusted, fmt.Sprintf("acl: %d valid root signature(s), need %d; is the pinned root key the one that signed it?", got, need)}
	}
	var acl ACL
	if err := decodeStrict(env.Payload, &acl); err != nil {
		return nil, &Error{RuleMalformed, "acl: " + err.Error()}
	}
	if err := acl.check(); err != nil {
		return nil, &Error{RuleMalformed, "acl: " + err.Error()}
	}
	if acl.Version < minVersion {
		return nil, &Error{RuleACLRollback, fmt.Sprintf("acl version %d is older than version %d seen before", acl.Version, minVersion)}
	}
	return &acl, nil
}

func aclErr(err error) error {
	var e *Error
	if errors.As(err, &e) {
		return &Error{e.Rule, "acl: " + e.Detail}
	}
	return err
}

// VerifyLatest checks a latest.json envelope and the ACL envelope it rests
// on, and returns both payloads. It fails with an [*Error] naming the first
// rule broken.
func (t Trust) VerifyLatest(aclData, latestData []byte, exp Expect) (*Latest, *ACL, error) {
	acl, err := t.VerifyACL(aclData, exp.MinACLVersion)
	if err != nil {
		return nil, nil, err
	}
	l, err := acl.VerifyLatest(latestData, exp)
	if err != nil {
		return nil, nil, err
	}
	return l, acl, nil
}

// VerifyLatest checks a latest.json envelope against an ACL that has
// already been verified (by [Trust.VerifyACL]); exp.MinACLVersion is not
// used. It applies every other rule of [Trust.VerifyLatest], in order. The
// envelope may be a [Halt]: the result is then the halted pointer without
// its candidate, with the halt's sequence, and Halted set.
func (a *ACL) VerifyLatest(data []byte, exp Expect) (*Latest, error) {
	return a.verifyEntry(data, exp, true)
}

// verifyPointer is steps 3 to 10 of VerifyLatest for an envelope of type
// Latest; expiry is not checked when checkExpiry is false (history).
func (a *ACL) verifyPointer(env *Envelope, exp Expect, checkExpiry bool) (*Latest, error) {
	var l Latest
	signers, err := a.open(env, "latest", &l)
	if err != nil {
		return nil, err
	}
	if err := matches(l.App, l.Channel, exp); err != nil {
		return nil, err
	}
	names := a.holders(signers, l.App, func(g Grant) bool { return g.CanUpload })
	if len(names) == 0 || (l.By != "" && !slices.Contains(names, l.By)) {
		return nil, &Error{RuleNotGranted, fmt.Sprintf("no signer holds can_upload for app %q (or \"by\" %q is not one of them)", l.App, l.By)}
	}
	if l.Sequence < exp.MinSequence {
		return nil, &Error{RuleRollback, fmt.Sprintf("sequence %d is lower than %d seen before", l.Sequence, exp.MinSequence)}
	}
	if checkExpiry && !exp.Now.Before(l.Expires) {
		return nil, &Error{RuleExpired, fmt.Sprintf("expired at %s", l.Expires.UTC().Format(time.RFC3339Nano))}
	}
	if err := l.check(); err != nil {
		return nil, &Error{RuleMalformed, "latest: " + err.Error()}
	}
	return &l, nil
}

// verifyHalt checks a halt envelope and the pointer it wraps; see "Halt"
// in docs/format.md for the rules and why a halt key cannot offer a build.
func (a *ACL) verifyHalt(env *Envelope, exp Expect, checkExpiry bool) (*Latest, error) {
	var h Halt
	signers, err := a.open(env, "halt", &h)
	if err != nil {
		return nil, err
	}
	if err := matches(h.App, h.Channel, exp); err != nil {
		return nil, err
	}
	if len(a.holders(signers, h.App, func(g Grant) bool { return g.CanHalt })) == 0 {
		return nil, &Error{RuleNotGranted, fmt.Sprintf("no signer of the halt holds can_halt for app %q", h.App)}
	}
	if err := h.Pointer.check(TypeLatest); err != nil {
		return nil, err
	}
	inner := exp
	inner.MinSequence = 0
	l, err := a.verifyPointer(&h.Pointer, inner, checkExpiry)
	if err != nil {
		return nil, err
	}
	if h.Sequence != l.Sequence+1 || h.Previous.Sequence != l.Sequence || !isDigest(h.Previous.SHA256) {
		return nil, &Error{RuleMalformed, fmt.Sprintf("halt: sequence %d and previous %d do not follow the halted pointer's %d", h.Sequence, h.Previous.Sequence, l.Sequence)}
	}
	if h.Sequence < exp.MinSequence {
		return nil, &Error{RuleRollback, fmt.Sprintf("sequence %d is lower than %d seen before", h.Sequence, exp.MinSequence)}
	}
	l.Candidate, l.Sequence, l.Halted = nil, h.Sequence, &h
	return l, nil
}

func matches(app, channel string, exp Expect) error {
	if app != exp.App {
		return &Error{RuleAppMismatch, fmt.Sprintf("manifest is for app %q, want %q", app, exp.App)}
	}
	if channel != exp.Channel {
		return &Error{RuleChannelMismatch, fmt.Sprintf("manifest is for channel %q, want %q", channel, exp.Channel)}
	}
	return nil
}

// VerifyBuild checks a build record envelope against a verified ACL.
func VerifyBuild(acl *ACL, data []byte, app string) (*Build, error) {
	env, err := ParseEnvelope(data, TypeBuild, MaxBuildSize)
	if err != nil {
		return nil, err
	}
	var b Build
	signers, err := acl.open(env, "build", &b)
	if err != nil {
		return nil, err
	}
	if b.App != app {
		return nil, &Error{RuleAppMismatch, fmt.Sprintf("build record is for app %q, want %q", b.App, app)}
	}
	if len(acl.holders(signers, app, func(g Grant) bool { return g.CanUpload })) == 0 {
		return nil, &Error{RuleNotGranted, fmt.Sprintf("no signer holds can_upload for app %q", app)}
	}
	if err := b.check(app); err != nil {
		return nil, &Error{RuleMalformed, "build: " + err.Error()}
	}
	return &b, nil
}

// VerifyBundle reads r to the end and checks that its bytes have the size
// and sha256 that ref names. It reads at most ref.Size+1 bytes.
func VerifyBundle(ref BuildRef, r io.Reader) error {
	h := sha256.New()
	n, err := io.Copy(h, io.LimitReader(r, ref.Size+1))
	if err != nil {
		return fmt.Errorf("read bundle: %w", err)
	}
	if n != ref.Size {
		return &Error{RuleBundleMismatch, fmt.Sprintf("bundle has %d bytes or more, manifest says %d", n, ref.Size)}
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != ref.SHA256 {
		return &Error{RuleBundleMismatch, fmt.Sprintf("bundle sha256 %s, manifest says %s", got, ref.SHA256)}
	}
	return nil
}

// open returns the ACL keys that validly signed env, and decodes its
// payload into v: the first two steps for every envelope a user signs.
func (a *ACL) open(env *Envelope, what string, v any) ([]ed25519.PublicKey, error) {
	signers, err := signersIn(env, a)
	if err != nil {
		return nil, err
	}
	if err := decodeStrict(env.Payload, v); err != nil {
		return nil, &Error{RuleMalformed, what + ": " + err.Error()}
	}
	return signers, nil
}

// signersIn returns the ACL keys that validly signed env.
func signersIn(env *Envelope, acl *ACL) ([]ed25519.PublicKey, error) {
	keys := acl.Keys()
	signers := env.SignedBy(keys)
	if len(signers) == 0 {
		if signedByKnownID(env, keys) {
			return nil, &Error{RuleBadSignature, "a known key's signature does not verify"}
		}
		return nil, &Error{RuleUntrustedKey, "signed by no key in the ACL"}
	}
	return signers, nil
}

// holders returns the names of the users whose key is among signers and
// whose grant for app (or "*") allows what may says.
func (a *ACL) holders(signers []ed25519.PublicKey, app string, may func(Grant) bool) []string {
	var out []string
	for _, k := range signers {
		if name := a.holder(k, app, may); name != "" {
			out = append(out, name)
		}
	}
	return out
}

func signedByKnownID(env *Envelope, keys []ed25519.PublicKey) bool {
	for _, k := range keys {
		id := KeyID(k)
		for _, s := range env.Signatures {
			if s.KeyID == id {
				return true
			}
		}
	}
	return false
}

// VerifyFile checks the content of one file (after undoing its encoding)
// against its manifest entry.
func VerifyFile(f FileEntry, r io.Reader) error {
	h := sha256.New()
	n, err := io.Copy(h, io.LimitReader(r, f.Size+1))
	if err != nil {
		return fmt.Errorf("read %s: %w", f.Name, err)
	}
	if got := hex.EncodeToString(h.Sum(nil)); n != f.Size || got != f.SHA256 {
		return &Error{RuleFilesMismatch, fmt.Sprintf("file %s has %d bytes and sha256 %s, manifest says %d and %s", f.Name, n, got, f.Size, f.SHA256)}
	}
	return nil
}
