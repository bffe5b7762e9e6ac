package redact

import (
	"encoding/base64"
	"encoding/json"
	"html"
	"net/url"
	"strconv"
	"strings"
)

// gitHTTPUser is the user name git hosts expect with a token in HTTP basic
// auth; base64("x-access-token:"+token) is what ends up in headers.
const gitHTTPUser = "x-access-token:"

var (
	allEncodings = []*base64.Encoding{
		base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding,
	}
	rawEncodings = []*base64.Encoding{base64.RawStdEncoding, base64.RawURLEncoding}
)

// variants returns the forms of secret that Layer A masks: the value itself,
// its escaped forms and its base64 forms. Duplicates are removed by the caller.
func variants(secret string) []string {
	out := []string{
		secret,
		url.QueryEscape(secret),
		url.PathEscape(secret),
		html.EscapeString(secret),
		unquote(strconv.Quote(secret)),
	}
	out = append(out, jsonForms(secret)...)
	out = append(out, base64Forms(secret)...)
	out = append(out, base64Forms(gitHTTPUser+secret)...)
	return append(out, base64Shifted(secret)...)
}

// jsonForms returns secret as it appears inside a JSON string, with and without
// the HTML-safe escaping of encoding/json.
func jsonForms(secret string) []string {
	var out []string
	for _, escapeHTML := range []bool{true, false} {
		var b strings.Builder
		enc := json.NewEncoder(&b)
		enc.SetEscapeHTML(escapeHTML)
		if enc.Encode(secret) == nil {
			out = append(out, unquote(strings.TrimSuffix(b.String(), "\n")))
		}
	}
	return out
}

// unquote strips the surrounding double quotes of an encoded string literal.
func unquote(q string) string {
	return strings.TrimSuffix(strings.TrimPrefix(q, `"`), `"`)
}

// base64Forms returns v in every base64 alphabet, padded and raw.
func base64Forms(v string) []string {
	out := make([]string, 0, len(allEncodings))
	for _, enc := range allEncodings {
		out = append(out, enc.EncodeToString([]byte(v)))
	}
	return out
}

// base64Shifted catches base64(prefix+secret) for any unknown prefix, such as
// "user:"+secret in HTTP basic auth. Base64 encodes 3 bytes per 4 characters,
// so the encoding of the secret depends on len(prefix) mod 3. For each of the
// three alignments k it encodes k filler bytes plus the secret and keeps only
// the characters whose 6 bits come entirely from the secret: characters that
// mix in filler bits (at the start) or bits of whatever follows the secret (at
// the end) are dropped. The result is a substring of every such encoding.
// With secrets of at least 8 bytes each part is at least 10 characters long.
func base64Shifted(secret string) []string {
	var out []string
	for k := range 3 {
		raw := []byte(strings.Repeat("\x00", k) + secret)
		from := (8*k + 5) / 6  // first char with no filler bit: ceil(8k/6)
		to := 8 * len(raw) / 6 // chars before this one hold only secret bits
		for _, enc := range rawEncodings {
			out = append(out, enc.EncodeToString(raw)[from:to])
		}
	}
	return out
}
