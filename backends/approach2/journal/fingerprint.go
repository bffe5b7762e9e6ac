package journal

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"fmt"

	"github.com/gitgate/gitgate/backends"
)

// Fingerprint returns the sha256 of op and a canonical JSON encoding of
// request: request is marshalled with encoding/json, decoded into generic
// values (numbers kept verbatim) and marshalled again, which sorts object
// keys. Equal requests therefore have equal fingerprints whatever their Go
// field order or map iteration order, and any differing field changes it.
// Normalise the request first (trim, default values) so that requests that
// mean the same thing compare equal.
func Fingerprint(op string, request any) ([]byte, error) {
	canon, err := canonicalJSON([]any{op, request})
	if err != nil {
		return nil, backends.Errorf(backends.Internal, "journal: fingerprint the %s request: %w", op, err)
	}
	sum := sha256.Sum256(canon)
	return sum[:], nil
}

// canonicalJSON encodes v with sorted object keys and no HTML escaping.
func canonicalJSON(v any) ([]byte, error) {
	raw, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("encode: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var generic any
	if err := dec.Decode(&generic); err != nil {
		return nil, fmt.Errorf("decode: %w", err)
	}
	var out bytes.Buffer
	enc := json.NewEncoder(&out)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(generic); err != nil {
		return nil, fmt.Errorf("re-encode: %w", err)
	}
	return out.Bytes(), nil
}
