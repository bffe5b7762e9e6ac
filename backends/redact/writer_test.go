package redact

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"strings"
	"testing"
)

// streamInput mixes every kind of secret with ordinary output.
var streamInput = "clone https://x-access-token:" + secret + "@github.com/o/r\n" +
	"Authorization: Basic " + b64("x-access-token:"+secret) + "\n" +
	"env GH=" + ghs + " sha " + sha40 + "\n" +
	"password=" + secret + "\n" + "tail " + secret + " " + b64("ab:"+secret)

const streamWant = "clone https://***@github.com/o/r\n" +
	"Authorization: ***\n" +
	"env GH=*** sha " + sha40 + "\n" +
	"password=***\n" + "tail *** YWI6***"

func writeChunks(t *testing.T, r *Redactor, chunks ...string) string {
	t.Helper()
	var out bytes.Buffer
	w := r.Writer(&out).(*Writer)
	for _, c := range chunks {
		if n, err := w.Write([]byte(c)); n != len(c) || err != nil {
			t.Fatalf("Write = %d, %v", n, err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return out.String()
}

func TestWriterSplitEverywhere(t *testing.T) {
	r := New(secret)
	if got := r.String(streamInput); got != streamWant {
		t.Fatalf("String:\n got %q\nwant %q", got, streamWant)
	}
	for i := 0; i <= len(streamInput); i++ {
		got := writeChunks(t, r, streamInput[:i], streamInput[i:])
		if got != streamWant {
			t.Fatalf("split at %d:\n got %q\nwant %q", i, got, streamWant)
		}
	}
	bytewise := strings.Split(streamInput, "")
	if got := writeChunks(t, r, bytewise...); got != streamWant {
		t.Fatalf("byte by byte:\n got %q\nwant %q", got, streamWant)
	}
}

func TestWriterSecretWithNewline(t *testing.T) {
	multi := "line-one-secret\nline-two-secret"
	r := New(multi)
	in := "a\n" + multi + "\nb\n"
	for i := 0; i <= len(in); i++ {
		if got := writeChunks(t, r, in[:i], in[i:]); got != "a\n***\nb\n" {
			t.Fatalf("split at %d: %q", i, got)
		}
	}
}

func TestWriterRandomStream(t *testing.T) {
	r := New(secret, ghp)
	rng := rand.New(rand.NewPCG(1, 2))
	pieces := []string{gitLog, secret, ghs, b64("user:" + secret), "https://u:" + secret + "@h/",
		"Authorization: token " + tok36, "password=" + tok36, strings.Repeat("x", 3000), sha64}
	for _, newlines := range []bool{true, false} {
		var in strings.Builder
		for in.Len() < 200_000 {
			in.WriteString(pieces[rng.IntN(len(pieces))])
			in.WriteString([]string{" ", "\n"}[rng.IntN(2)])
		}
		s := in.String()
		if !newlines { // one line: "password=" would mask beyond maxHold
			s = strings.ReplaceAll(strings.ReplaceAll(s, "\n", " "), "password=", "pw=")
		}
		var chunks []string
		for rest := s; rest != ""; {
			n := min(len(rest), 1+rng.IntN(700))
			chunks, rest = append(chunks, rest[:n]), rest[n:]
		}
		if got, want := writeChunks(t, r, chunks...), r.String(s); got != want {
			firstDiff(t, got, want)
			t.Fatalf("newlines=%v: stream output differs from String (len %d vs %d)", newlines, len(got), len(want))
		}
	}
}

func TestWriterPassesCompleteLines(t *testing.T) {
	var out bytes.Buffer
	w := New(secret).Writer(&out)
	if _, err := w.Write([]byte("one " + secret + "\ntwo s3cr3t-pro")); err != nil {
		t.Fatal(err)
	}
	if got := out.String(); got != "one ***\n" {
		t.Fatalf("after first write: %q", got)
	}
	if _, err := w.Write([]byte("ject-token-XYZ\n")); err != nil {
		t.Fatal(err)
	}
	if got := out.String(); got != "one ***\ntwo ***\n" {
		t.Fatalf("after second write: %q", got)
	}
}

type failWriter struct{ calls int }

func (f *failWriter) Write(p []byte) (int, error) { f.calls++; return 0, errors.New("disk full") }

func TestWriterErrorsAreSticky(t *testing.T) {
	fw := &failWriter{}
	w := New().Writer(fw).(*Writer)
	if _, err := w.Write([]byte("line\n")); err == nil {
		t.Fatal("want error")
	}
	if n, err := w.Write([]byte("more\n")); n != 0 || err == nil {
		t.Fatalf("second Write = %d, %v", n, err)
	}
	if err := w.Flush(); err == nil || fw.calls != 1 {
		t.Fatalf("Flush = %v after %d calls", err, fw.calls)
	}
}

func firstDiff(t *testing.T, got, want string) {
	t.Helper()
	i := 0
	for i < len(got) && i < len(want) && got[i] == want[i] {
		i++
	}
	lo := max(0, i-100)
	t.Logf("first difference at %d\n got %q\nwant %q", i, got[lo:min(len(got), i+100)], want[lo:min(len(want), i+100)])
}

func TestWriterKeepsMatchContext(t *testing.T) {
	r := New()
	in := "a\npassword=" + strings.Repeat("p", 3000) + "\nhttps://" + ghs + "@h/" + strings.Repeat(" ", 1100) + "\n"
	want := "a\npassword=***\nhttps://***@h/" + strings.Repeat(" ", 1100) + "\n"
	for i := 0; i <= len(in); i += 13 {
		if got := writeChunks(t, r, in[:i], in[i:]); got != want {
			firstDiff(t, got, want)
			t.Fatalf("split at %d", i)
		}
	}
}

func TestWriterBoundsHeldData(t *testing.T) {
	var out bytes.Buffer
	w := New().Writer(&out).(*Writer)
	if _, err := w.Write([]byte("password=")); err != nil {
		t.Fatal(err)
	}
	chunk := []byte(strings.Repeat("p", 4000))
	for range 25 {
		if _, err := w.Write(chunk); err != nil {
			t.Fatal(err)
		}
		if len(w.buf) > maxHold+len(chunk)+len("password=") {
			t.Fatalf("holding %d bytes", len(w.buf))
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	// The match is emitted masked once it exceeds maxHold; the rest of the
	// (one-line) "password" follows in clear as it has no "password=" context.
	forced := (maxHold-len("password="))/len(chunk) + 1
	want := "password=***" + strings.Repeat("p", (25-forced)*len(chunk))
	if got := out.String(); got != want {
		t.Fatalf("got %q... (%d bytes)", got[:20], len(got))
	}
}
