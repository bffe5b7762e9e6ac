package redact

import (
	"encoding/base64"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"testing"
)

const (
	secret = "s3cr3t-project-token-XYZ"
	tok36  = "16C7e42F292c6912E7710c838347Ae178B4a"
	ghs    = "ghs_" + tok36
	ghp    = "ghp_" + tok36
	glpat  = "glpat-xYz12_abc-DEF456ghi7"
	sha40  = "9fceb02d0ae598e95dc970b74767f19372d61af8"
	sha64  = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
)

var finePAT = "github_pat_11ABCDEFG0123456789abc_" + strings.Repeat("aB3", 19) + "xy"

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

func check(t *testing.T, r *Redactor, in, want string) {
	t.Helper()
	if got := r.String(in); got != want {
		t.Errorf("String(%q)\n got %q\nwant %q", in, got, want)
	}
	if got := string(r.Bytes([]byte(in))); got != want {
		t.Errorf("Bytes(%q) = %q, want %q", in, got, want)
	}
}

func TestTokenShapes(t *testing.T) {
	if len(tok36) != 36 || len(finePAT) != 93 {
		t.Fatalf("bad fixtures: %d %d", len(tok36), len(finePAT))
	}
	r := New()
	cases := map[string]string{
		"token " + ghs + " expired":             "token *** expired",
		"GITHUB_TOKEN=" + ghp:                   "GITHUB_TOKEN=***",
		"gho_" + tok36 + ",ghu_" + tok36:        "***,***",
		"ghr_" + tok36 + "\n":                   "***\n",
		"pat=" + finePAT + ".":                  "pat=***.",
		"gitlab " + glpat + " ok":               "gitlab *** ok",
		"glptt-" + sha40:                        "***",
		"short ghs_" + tok36[:35] + " survives": "short ghs_" + tok36[:35] + " survives",
		"glpat-tooShort123":                     "glpat-tooShort123",
	}
	for in, want := range cases {
		check(t, r, in, want)
	}
}

func TestExactSecretAndEncodings(t *testing.T) {
	r := New(secret)
	cases := map[string]string{
		"using " + secret + " now": "using *** now",
		"b64 " + b64(secret):       "b64 ***",
		"raw " + base64.RawURLEncoding.EncodeToString([]byte(secret+"?")):            "raw ***Pw", // the trailing "?" is not secret
		"Basic-ish " + b64("x-access-token:"+secret):                                 "Basic-ish ***",
		"url " + base64.URLEncoding.EncodeToString([]byte("x-access-token:"+secret)): "url ***",
		// Any user: alignment 0 (someuser:, ab:), 1 (abc:) and 2 (user:).
		b64("someuser:" + secret): "c29tZXVzZXI6***",
		b64("ab:" + secret):       "YWI6***",
		b64("abc:" + secret):      "YWJjOn***g==",
		b64("user:" + secret):     "dXNlcjp***o=",
	}
	for in, want := range cases {
		check(t, r, in, want)
	}
}

func TestEscapedForms(t *testing.T) {
	odd := `p@ss/w0rd+"key"<1>`
	r := New(odd)
	check(t, r, "?pw="+url.QueryEscape(odd)+"&x=1", "?pw=***&x=1")
	check(t, r, "/p/"+url.PathEscape(odd)+"/x", "/p/***/x")
	check(t, r, `{"token":"p@ss/w0rd+\"key\"\u003c1\u003e","n":1}`, `{"token":"***","n":1}`)
	check(t, r, `{"token":"p@ss/w0rd+\"key\"<1>","n":1}`, `{"token":"***","n":1}`)
	check(t, r, `<v>p@ss/w0rd+&#34;key&#34;&lt;1&gt;</v>`, `<v>***</v>`)
}

func TestShortSecretsIgnored(t *testing.T) {
	r := New("", "main", "1234567")
	r.Add("origin")
	check(t, r, "main origin 1234567", "main origin 1234567")
}

func TestAddAtRunTime(t *testing.T) {
	r := New()
	check(t, r, "dev-token-0123456789", "dev-token-0123456789")
	r.Add("dev-token-0123456789", "dev-token-0123456789")
	check(t, r, "x dev-token-0123456789 y", "x *** y")
	var zero Redactor // usable: pattern rules only until Add
	check(t, &zero, ghs, "***")
}

func TestUserinfoURLs(t *testing.T) {
	r := New()
	cases := map[string]string{
		"fatal: https://user:hunter2@github.com/o/r.git": "fatal: https://***@github.com/o/r.git",
		"remote=https://" + glpat + "@gitlab.com/x":      "remote=https://***@gitlab.com/x",
		"HTTPS://x-access-token:abc@Host":                "HTTPS://***@Host",
		"git+ssh://git@host:22/r":                        "git+ssh://***@host:22/r",
		"From https://github.com/o/r\n":                  "From https://github.com/o/r\n",
		"https://github.com/user@example":                "https://github.com/user@example",
		"git@github.com:o/r.git <a@b.org>":               "git@github.com:o/r.git <a@b.org>",
		"1://x@y ://z@w":                                 "1://x@y ://z@w",
	}
	for in, want := range cases {
		check(t, r, in, want)
	}
}

func TestAuthorizationHeaders(t *testing.T) {
	r := New()
	cases := map[string]string{
		"Authorization: Basic dXNlcjpwYXNz":                              "Authorization: ***",
		"> Authorization: Bearer abc.def\n< HTTP/1.1 200":                "> Authorization: ***\n< HTTP/1.1 200",
		"proxy-authorization: token abc123 trailing":                     "proxy-authorization: *** trailing",
		"http.https://github.com/.extraheader=AUTHORIZATION: basic eC1h": "http.https://github.com/.extraheader=AUTHORIZATION: ***",
		`{"Authorization": "Bearer abc", "x": 1}`:                        `{"Authorization": "***", "x": 1}`,
		"no authorization needed":                                        "no authorization needed",
	}
	for in, want := range cases {
		check(t, r, in, want)
	}
}

func TestCredentialPassword(t *testing.T) {
	r := New()
	in := "protocol=https\nhost=github.com\nusername=x-access-token\npassword=hunter2 with space\n\n"
	check(t, r, in, "protocol=https\nhost=github.com\nusername=x-access-token\npassword=***\n\n")
	check(t, r, `{"out":"host=h\npassword=abc\nquit=1"}`, `{"out":"host=h\npassword=***\nquit=1"}`)
	check(t, r, "PASSWORD=x", "PASSWORD=***")
	check(t, r, "password=", "password=")
	check(t, r, "password=a\\\nnext", "password=***\\\nnext")
}

const gitLog = `commit 9fceb02d0ae598e95dc970b74767f19372d61af8
Merge: 1a410efbd13591db07496601ebc7a059dd55cfe9 e3b0c44298fc1c149afbf4c8996fb92427ae41e4
Author: Jane Dev <jane@example.com>
Date:   Mon Mar 3 12:34:56 2025 +0100

    Fix token refresh (tree e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855)

 backends/gitremote/handler.go | 12 +++++++-----
 1 file changed, 7 insertions(+), 5 deletions(-)
From https://github.com/gitgate/gitgate
 * branch            main       -> FETCH_HEAD
   1a410ef..9fceb02  main       -> origin/main
`

func TestOrdinaryOutputSurvives(t *testing.T) {
	r := New(secret, ghs)
	check(t, r, gitLog, gitLog)
	check(t, r, sha40+" "+sha64, sha40+" "+sha64)
	check(t, r, strings.ToUpper(sha40)+"\x00"+sha64[:12], strings.ToUpper(sha40)+"\x00"+sha64[:12])
	if in := []byte(nil); r.Bytes(in) != nil {
		t.Error("Bytes(nil) != nil")
	}
}

func TestOverlappingSecretsMaskedWhole(t *testing.T) {
	r := New("abcdefgh1234", "1234wxyz5678")
	check(t, r, "[abcdefgh1234wxyz5678]", "[***]")
}

func TestConcurrentAdd(t *testing.T) {
	r := New()
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			tok := "concurrent-secret-" + string(rune('a'+i))
			r.Add(tok)
			if got := r.String(tok); got != Mask {
				t.Errorf("String(%q) = %q", tok, got)
			}
		})
	}
	wg.Wait()
	if n := len(r.load().secrets); n != 8 {
		t.Errorf("secrets = %d, want 8", n)
	}
}

func BenchmarkString(b *testing.B) {
	r := New(secret, ghs)
	in := strings.Repeat(gitLog, 4096/len(gitLog)+1)[:4096]
	b.SetBytes(int64(len(in)))
	for b.Loop() {
		if r.String(in) != in {
			b.Fatal("changed")
		}
	}
}

func BenchmarkStringWithSecret(b *testing.B) {
	r := New(secret, ghs)
	in := strings.Repeat(gitLog, 4096/len(gitLog)+1)[:4000] + "https://x:" + secret + "@h"
	b.SetBytes(int64(len(in)))
	for b.Loop() {
		r.String(in)
	}
}

func BenchmarkStringManySecrets(b *testing.B) {
	r := New()
	for i := range 100 {
		r.Add(fmt.Sprintf("project-%03d-token-%x", i, i*7919))
	}
	in := strings.Repeat(gitLog, 4096/len(gitLog)+1)[:4096]
	b.SetBytes(int64(len(in)))
	for b.Loop() {
		r.String(in)
	}
}
