package manifest

import (
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"
)

// Payload types of the envelopes this project signs.
const (
	TypeACL    = "application/vnd.deploy.acl+json"
	TypeBuild  = "application/vnd.deploy.build+json"
	TypeLatest = "application/vnd.deploy.latest+json"
	TypeHalt   = "application/vnd.deploy.halt+json"
)

// Size limits for envelopes read from a store or the network. Anything larger
// is rejected before it is parsed.
const (
	MaxACLSize    = 1 << 20
	MaxLatestSize = 64 << 10
	MaxBuildSize  = 64 << 10
)

// Envelope is a DSSE envelope (https://github.com/secure-systems-lab/dsse):
// the payload bytes, their type, and signatures over PAE(type, payload).
// Payload and Sig are base64 (standard, padded) in JSON.
type Envelope struct {
	PayloadType string      `json:"payloadType"`
	Payload     []byte      `json:"payload"`
	Signatures  []Signature `json:"signatures"`
}

// Signature is one signer's Ed25519 signature and the ID of its key.
type Signature struct {
	KeyID string `json:"keyid"`
	Sig   []byte `json:"sig"`
}

// PAE is DSSE's pre-authentication encoding, the bytes that are signed:
// "DSSEv1" SP len(type) SP type SP len(payload) SP payload, lengths in
// ASCII decimal.
func PAE(payloadType string, payload []byte) []byte {
	b := make([]byte, 0, 32+len(payloadType)+len(payload))
	b = append(b, "DSSEv1 "...)
	b = strconv.AppendInt(b, int64(len(payloadType)), 10)
	b = append(b, ' ')
	b = append(b, payloadType...)
	b = append(b, ' ')
	b = strconv.AppendInt(b, int64(len(payload)), 10)
	b = append(b, ' ')
	return append(b, payload...)
}

// Sign marshals v (an [ACL], [Build], [Latest] or [Halt]) as the payload of a
// new envelope signed by each key. It refuses a payload that the verifiers'
// decoding rules would refuse, such as a time not in UTC or an integer over
// [MaxInt].
func Sign(payloadType string, v any, keys ...ed25519.PrivateKey) (*Envelope, error) {
	payload, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("encode %s: %w", payloadType, err)
	}
	if err := decodeStrict(payload, reflect.New(reflect.Indirect(reflect.ValueOf(v)).Type()).Interface()); err != nil {
		return nil, fmt.Errorf("encode %s: %w", payloadType, err)
	}
	return SignPayload(payloadType, payload, keys...), nil
}

// SignPayload signs payload bytes as they are, with each key.
func SignPayload(payloadType string, payload []byte, keys ...ed25519.PrivateKey) *Envelope {
	env := &Envelope{PayloadType: payloadType, Payload: payload, Signatures: []Signature{}}
	pae := PAE(payloadType, payload)
	for _, k := range keys {
		pub := k.Public().(ed25519.PublicKey)
		env.Signatures = append(env.Signatures, Signature{KeyID: KeyID(pub), Sig: ed25519.Sign(k, pae)})
	}
	return env
}

// Marshal encodes the envelope as indented JSON, the form kept in stores.
func (e *Envelope) Marshal() []byte {
	b, _ := json.MarshalIndent(e, "", "  ")
	return append(b, '\n')
}

// ParseEnvelope decodes an envelope of the wanted payload type, refusing
// data larger than limit bytes.
func ParseEnvelope(data []byte, payloadType string, limit int) (*Envelope, error) {
	return parseEnvelope(data, limit, payloadType)
}

// parseEnvelope is parse-envelope of docs/format.md, for any of types.
func parseEnvelope(data []byte, limit int, types ...string) (*Envelope, error) {
	if len(data) > limit {
		return nil, &Error{Rule: RuleTooLarge, Detail: fmt.Sprintf("%d bytes, limit %d", len(data), limit)}
	}
	var env Envelope
	if err := decodeStrict(data, &env); err != nil {
		return nil, &Error{Rule: RuleMalformed, Detail: err.Error()}
	}
	return &env, env.check(types...)
}

// check applies the rules of an envelope decoded from JSON.
func (e *Envelope) check(types ...string) error {
	if !slices.Contains(types, e.PayloadType) {
		return &Error{Rule: RuleMalformed, Detail: fmt.Sprintf("payload type %q, want %q", e.PayloadType, strings.Join(types, `" or "`))}
	}
	for _, s := range e.Signatures {
		if !isDigest(s.KeyID) || len(s.Sig) != ed25519.SignatureSize {
			return &Error{Rule: RuleMalformed, Detail: "a signature's keyid is not 64 lowercase hex digits, or its sig not 64 bytes"}
		}
	}
	if len(e.Signatures) == 0 {
		return &Error{Rule: RuleUnsigned, Detail: "the envelope has no signatures"}
	}
	return nil
}

// SignedBy returns the distinct keys among trusted whose signature on the
// envelope verifies. A key that signed twice counts once; signatures by
// unknown keys are ignored.
func (e *Envelope) SignedBy(trusted []ed25519.PublicKey) []ed25519.PublicKey {
	pae := PAE(e.PayloadType, e.Payload)
	var out []ed25519.PublicKey
	for _, k := range trusted {
		id := KeyID(k)
		for _, s := range e.Signatures {
			if s.KeyID == id && ed25519.Verify(k, pae, s.Sig) {
				out = append(out, k)
				break
			}
		}
	}
	return out
}
