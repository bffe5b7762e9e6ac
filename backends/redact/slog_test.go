package redact

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"reflect"
	"strings"
	"testing"
)

type tokenHolder struct{ Tok string }

func (h tokenHolder) String() string { return "holder(" + h.Tok + ")" }

type lazy struct{}

func (lazy) LogValue() slog.Value { return slog.StringValue("lazy " + secret) }

type config struct{ Nested *struct{ Token string } }

func newLogger(r *Redactor) (*slog.Logger, *bytes.Buffer) {
	var buf bytes.Buffer
	noTime := func(_ []string, a slog.Attr) slog.Attr {
		if a.Key == slog.TimeKey {
			return slog.Attr{}
		}
		return a
	}
	h := slog.NewJSONHandler(&buf, &slog.HandlerOptions{ReplaceAttr: noTime})
	return slog.New(r.Handler(h)), &buf
}

func TestHandler(t *testing.T) {
	r := New(secret)
	log, buf := newLogger(r)
	log = log.With("remote", "https://u:"+secret+"@h/r", "n", 7).WithGroup("req")
	cfg := config{Nested: &struct{ Token string }{ghs}}
	log.Info("clone with "+secret,
		"err", fmt.Errorf("auth %s: %w", secret, fs.ErrPermission),
		"who", tokenHolder{secret},
		"lazy", lazy{},
		"cfg", cfg,
		"ok", true,
		slog.Group("hdr", "Authorization", "Bearer "+ghp, "sha", sha40),
	)
	want := `{"level":"INFO","msg":"clone with ***","remote":"https://***@h/r","n":7,` +
		`"req":{"err":"auth ***: permission denied","who":"holder(***)","lazy":"lazy ***",` +
		`"cfg":"{\"Nested\":{\"Token\":\"***\"}}","ok":true,` +
		`"hdr":{"Authorization":"Bearer ***","sha":"` + sha40 + `"}}}` + "\n"
	if got := buf.String(); got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
}

func TestHandlerSecretKeysAndGroupsAndNumbers(t *testing.T) {
	r := New(secret, "987654321987")
	log, buf := newLogger(r)
	log.WithGroup(secret).Info("m", secret, 1, "id", 987654321987, "f", 1.5)
	want := `{"level":"INFO","msg":"m","***":{"***":1,"id":"***","f":1.5}}` + "\n"
	if got := buf.String(); got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
	if !log.Enabled(t.Context(), slog.LevelInfo) || log.Enabled(t.Context(), slog.LevelDebug) {
		t.Error("Enabled not delegated")
	}
}

func TestError(t *testing.T) {
	r := New(secret)
	if r.Error(nil) != nil {
		t.Fatal("Error(nil) != nil")
	}
	pe := &fs.PathError{Op: "open", Path: "/creds/" + secret, Err: os.ErrNotExist}
	err := fmt.Errorf("clone https://x-access-token:%s@github.com/o/r: %w", ghs, pe)
	red := r.Error(err)
	if want := "clone https://***@github.com/o/r: open /creds/***: file does not exist"; red.Error() != want {
		t.Errorf("Error() = %q, want %q", red.Error(), want)
	}
	if s := fmt.Sprintf("%v|%+v|%s", red, red, red); strings.Contains(s, secret) || strings.Contains(s, ghs) {
		t.Errorf("formatted error leaks: %s", s)
	}
	var got *fs.PathError
	if !errors.Is(red, os.ErrNotExist) || !errors.As(red, &got) || got != pe {
		t.Error("errors.Is/As do not reach the original chain")
	}
	clean := errors.New("nothing secret here")
	if r.Error(clean) != clean { //nolint:errorlint // the very same error, not one that wraps it
		t.Error("clean error not returned as is")
	}
}

func TestValue(t *testing.T) {
	r := New(secret)
	in := map[string]any{
		"out":  "pushed with " + secret,
		"args": []any{"git", "push", "https://" + ghs + "@github.com/o/r", 3, nil},
		"env":  map[string]string{"GH_TOKEN": ghp, "HOME": "/home/agent"},
		"argv": []string{"-c", "http.extraheader=Authorization: basic " + b64("x:"+secret)},
		"meta": map[string]any{"sha": sha40, "n": 1.5, "ok": true, secret: []any{}},
		"nil":  []any(nil),
	}
	want := map[string]any{
		"out":  "pushed with ***",
		"args": []any{"git", "push", "https://***@github.com/o/r", 3, nil},
		"env":  map[string]string{"GH_TOKEN": "***", "HOME": "/home/agent"},
		"argv": []string{"-c", "http.extraheader=Authorization: ***"},
		"meta": map[string]any{"sha": sha40, "n": 1.5, "ok": true, "***": []any{}},
		"nil":  []any(nil),
	}
	if got := r.Value(in); !reflect.DeepEqual(got, want) {
		t.Errorf("Value:\n got %#v\nwant %#v", got, want)
	}
	if in["out"] != "pushed with "+secret || in["args"].([]any)[2] != "https://"+ghs+"@github.com/o/r" {
		t.Error("input was modified")
	}
	if got := r.Value(42); got != 42 {
		t.Errorf("Value(42) = %v", got)
	}
}
