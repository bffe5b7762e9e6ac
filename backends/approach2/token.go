package approach2

import (
	"context"
	"crypto/subtle"
	"errors"
	"strings"

	"google.golang.org/grpc/metadata"
)

// previousTokenHeader carries, beside authorization, the token the
// client's current one replaced while that one is in its grace window, so
// that a service that has not seen the rotation yet still recognises the
// client.
const previousTokenHeader = "gitgate-previous-authorization"

// Tokens returns the service token now and, within the grace window of a
// rotation, the one it replaced ("" otherwise). It is called for every
// call, so it must be cheap (configs.Approach2Config.CurrentTokens reads
// memory only).
//
// A rotation works whichever side sees the new token first: the client
// sends its current token and its previous one; the service accepts a
// call presenting its own current token or its own previous one. After
// the grace window a client still holding only the old token is refused.
type Tokens func() (current, previous string)

// fixedTokens is Tokens for a token that never changes.
func fixedTokens(token string) Tokens { return func() (string, string) { return token, "" } }

// tokensOr is t, or fixed when t is nil.
func tokensOr(t Tokens, fixed string) Tokens {
	if t != nil {
		return t
	}
	return fixedTokens(fixed)
}

// rotatingBearer sends the client's current service token with every call,
// and its previous one during a rotation's grace window.
type rotatingBearer struct {
	tokens   Tokens
	insecure bool
}

func (b rotatingBearer) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	cur, prev := b.tokens()
	if cur == "" {
		return nil, errors.New("approach2: no service token configured")
	}
	md := map[string]string{"authorization": "Bearer " + cur}
	if prev != "" && prev != cur {
		md[previousTokenHeader] = "Bearer " + prev
	}
	return md, nil
}

func (b rotatingBearer) RequireTransportSecurity() bool { return !b.insecure }

// presentsToken reports whether the call's metadata presents one of the
// service's accepted tokens (its current one, or its previous one within
// the grace window), compared in constant time.
func presentsToken(ctx context.Context, tokens Tokens) bool {
	cur, prev := tokens()
	md, _ := metadata.FromIncomingContext(ctx)
	ok := false
	for _, v := range append(md.Get("authorization"), md.Get(previousTokenHeader)...) {
		tok, bearer := strings.CutPrefix(v, "Bearer ")
		if !bearer || tok == "" {
			continue
		}
		for _, want := range []string{cur, prev} {
			if want != "" && subtle.ConstantTimeCompare([]byte(tok), []byte(want)) == 1 {
				ok = true
			}
		}
	}
	return ok
}
