package mcpserver

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"unicode/utf8"
)

// hostile is a string from a hostile repository: a colour escape, a bidi
// override, zero-width characters, a carriage return, DEL, a C1 control,
// a BOM, an isolate, a byte that is not UTF-8, a tag character (invisible
// "ASCII smuggling"), a line separator, quotes and backslashes, and an
// emoji ZWJ sequence (legitimate in content).
const hostile = "a\x1b[31mB\u202eC\u200bD\u200dE\r\nF\tG\x7fH\u0085I\ufeffJ\u2066K\xffL\U000E0041M\u2028N\"O\\P👩\u200d💻"

// unsafe lists what a terminal or a reader would not see as it is in text:
// C0 controls (but '\n' and '\t' when layout is allowed), DEL, C1
// controls, bidi controls, zero-width characters (a joiner between two
// emoji aside), BOM, tag characters, line and paragraph separators, and
// bytes that are not UTF-8. It is written independently of escape.go, from
// the list.
func unsafe(text string, layout bool) []string {
	var bad []string
	prev := rune(-1)
	for i, r := range text {
		var next rune
		if i+utf8.RuneLen(r) < len(text) {
			next, _ = utf8.DecodeRuneInString(text[i+utf8.RuneLen(r):])
		}
		switch {
		case r == utf8.RuneError:
			if _, n := utf8.DecodeRuneInString(text[i:]); n == 1 {
				bad = append(bad, fmt.Sprintf("byte %#x at %d", text[i], i))
			}
		case r == '\n' || r == '\t':
			if !layout {
				bad = append(bad, fmt.Sprintf("%U at %d", r, i))
			}
		case r < 0x20, r >= 0x7f && r <= 0x9f,
			r >= 0x202a && r <= 0x202e, r >= 0x2066 && r <= 0x2069, r == 0x200e, r == 0x200f, r == 0x061c,
			r == 0x200b, r == 0x200c, r == 0x2060, r == 0xfeff, r == 0x2028, r == 0x2029,
			r >= 0xe0000 && r <= 0xe007f:
			bad = append(bad, fmt.Sprintf("%U at %d", r, i))
		case r == 0x200d:
			if prev != '👩' || next != '💻' {
				bad = append(bad, fmt.Sprintf("%U at %d", r, i))
			}
		}
		prev = r
	}
	return bad
}

func TestEscapers(t *testing.T) {
	for _, c := range []struct {
		name, in, want string
		escape         func(string) string
	}{
		{"plain name", "src/main.go", "src/main.go", quoteName},
		{"name with spaces and accents", "docs/ré sumé.txt", "docs/ré sumé.txt", quoteName},
		{"colour name", "red\x1b[31mALERT.txt", `"red\x1b[31mALERT.txt"`, quoteName},
		{"bidi name", "invoice\u202etxt.exe", `"invoice\u202etxt.exe"`, quoteName},
		{"joiner in a name", "a👩\u200d💻b", `"a👩\u200d💻b"`, quoteName},
		{"name with a backslash", `dir\file`, `"dir\\file"`, quoteName},
		{"name that looks quoted", `"x\u202e"`, `"\"x\\u202e\""`, quoteName},
		{"name not UTF-8", "bad\xffname", `"bad\xffname"`, quoteName},
		{"name with a newline", "two\nlines", `"two\nlines"`, quoteName},
		{"subject clearing the terminal", "\x1b[2J\x1b[Hall good\r", `\x1b[2J\x1b[Hall good\r`, escapeLine},
		{"subject with a tab and newline", "a\tb\nc", `a\tb\nc`, escapeLine},
		{"subject with emoji", "ship it 👩\u200d💻🚀", "ship it 👩\u200d💻🚀", escapeLine},
		{"zero-width in a subject", "pay\u200bpal", `pay\u200bpal`, escapeLine},
		{"content keeps layout", "line 1\n\tline 2\r\n", "line 1\n\tline 2\\r\n", escapeText},
		{"content with bidi (trojan source)", "if x {\u202e} \u2066// admin\u2069\n", "if x {\\u202e} \\u2066// admin\\u2069\n", escapeText},
		{"content with C1 and DEL", "a\u009bb\x7fc", `a\u009bb\x7fc`, escapeText},
		{"content with BOM and tags", "\ufeffhi\U000E0069", `\ufeffhi\U000e0069`, escapeText},
		{"content keeps backslashes", `printf("\n")`, `printf("\n")`, escapeText},
		{"content with a stray joiner", "a\u200db 👩\u200d💻", `a\u200db 👩` + "\u200d💻", escapeText},
		{"content not UTF-8", "caf\xe9", `caf\xe9`, escapeText},
		{"skin tone joiner", "👩🏽\u200d💻", "👩🏽\u200d💻", escapeText},
	} {
		if got := c.escape(c.in); got != c.want {
			t.Errorf("%s: %q escaped to %q, want %q", c.name, c.in, got, c.want)
		}
	}
	for name, f := range map[string]func(string) string{"quoteName": quoteName, "escapeLine": escapeLine} {
		if bad := unsafe(f(hostile), false); len(bad) > 0 {
			t.Errorf("%s left %v in %q", name, bad, f(hostile))
		}
	}
	if bad := unsafe(escapeText(hostile), true); len(bad) > 0 {
		t.Errorf("escapeText left %v in %q", bad, escapeText(hostile))
	}
}

// TestEscapeJSONKeepsTheExactString: structured content shows no invisible
// character in its JSON text, and decodes to the exact bytes (a byte that
// is not UTF-8 aside: JSON cannot carry it, encoding/json makes it U+FFFD).
func TestEscapeJSONKeepsTheExactString(t *testing.T) {
	exact := strings.ToValidUTF8(hostile, "\ufffd")
	raw, _ := json.Marshal(map[string]string{"path": exact})
	out := escapeJSON(raw)
	if !json.Valid(out) {
		t.Fatalf("invalid JSON: %s", out)
	}
	var back map[string]string
	if err := json.Unmarshal(out, &back); err != nil || back["path"] != exact {
		t.Fatalf("decoded %q (%v), want %q", back["path"], err, exact)
	}
	if bad := unsafe(string(out), false); len(bad) > 0 {
		t.Errorf("JSON text has %v: %s", bad, out)
	}
	if !strings.Contains(string(out), `\u202e`) || !strings.Contains(string(out), `\udb40\udc41`) {
		t.Errorf("JSON text does not escape the override or the tag: %s", out)
	}
}

// BenchmarkEscapePage measures the cost of escaping a full page (256 KiB)
// of source code, as readable text and as structured JSON.
func BenchmarkEscapePage(b *testing.B) {
	page := strings.Repeat("\tfmt.Println(\"héllo, wörld\") // 👩\u200d💻\n", 256<<10/48)
	raw, _ := json.Marshal(map[string]string{"content": page})
	b.SetBytes(int64(len(page)))
	for b.Loop() {
		_ = escapeText(page)
		_ = escapeJSON(raw)
	}
}
