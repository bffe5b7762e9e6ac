package mcpserver

import (
	"strconv"
	"strings"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"
)

// This file makes repository content safe to show: the readable text of
// every result, error and progress message goes through one of the three
// escapers below, and structured content through escapeJSON. The escape
// forms are Go's (strconv.QuoteRuneToGraphic): \x1b, \r, \x7f, \u202e,
// \U000e0041, and \xff for a byte that is not UTF-8. golang.org/x/text has
// tables (bidi classes, PRECIS) but no escaper, so the standard library's
// quoting is used.

// quoteName is for names: paths, branch and remote names, workspace names,
// URLs, commit ids. A name made only of graphic characters (letters, marks,
// numbers, punctuation, symbols, spaces) and without '"' or '\' is shown as
// it is; any other name is shown in double quotes with Go escapes
// (strconv.QuoteToGraphic), as git's core.quotePath does, so that a quoted
// name is never confused with a plain one. Every control, format (bidi,
// zero-width, joiner) and separator character is escaped in names: none is
// legitimate there.
func quoteName(s string) string {
	for i, r := range s {
		if r == '"' || r == '\\' || !strconv.IsGraphic(r) {
			return strconv.QuoteToGraphic(s)
		}
		if r == utf8.RuneError {
			if _, size := utf8.DecodeRuneInString(s[i:]); size == 1 {
				return strconv.QuoteToGraphic(s)
			}
		}
	}
	return s
}

// escapeLine is for one line of prose: commit subjects, author names,
// progress messages. It escapes in place (no quotes) every character
// escapeText escapes, and newlines and tabs too; like escapeText, it keeps
// a zero-width joiner between two emoji.
func escapeLine(s string) string { return escape(s, false) }

// escapeText is for multi-line content whose layout matters: file
// content, diffs, error messages, notices. It keeps '\n' and '\t' and
// escapes in place every other C0 control (\r included), DEL, the C1
// controls, the format characters (Unicode category Cf: bidi embeddings,
// overrides, isolates and marks, zero-width space, joiners, word joiner,
// BOM, tag characters), the line and paragraph separators, and bytes that
// are not UTF-8. A zero-width joiner between two emoji (as in 👩‍💻) is
// content and is kept. A backslash is not escaped: the escaped text of
// "\x1b" and a literal backslash-x-1-b look alike, which is why the
// structured content carries the exact bytes.
func escapeText(s string) string { return escape(s, true) }

func escape(s string, keepLayout bool) string {
	if !needsEscape(s, keepLayout) {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 16)
	prev, last := rune(-1), 0 // s[last:i] is still to be copied
	for i := 0; i < len(s); {
		if c := s[i]; c >= 0x20 && c < 0x7f {
			prev = rune(c)
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		invalid := r == utf8.RuneError && size == 1
		if invalid || mustEscape(r, keepLayout) && !(r == zwj && emojiJoin(prev, s[i+size:])) {
			b.WriteString(s[last:i])
			if invalid {
				const hex = "0123456789abcdef"
				b.WriteString(`\x`)
				b.WriteByte(hex[s[i]>>4])
				b.WriteByte(hex[s[i]&0xf])
				r = -1
			} else {
				q := strconv.QuoteRuneToGraphic(r)
				b.WriteString(q[1 : len(q)-1])
			}
			last = i + size
		}
		prev = r
		i += size
	}
	b.WriteString(s[last:])
	return b.String()
}

// zwj is ZERO WIDTH JOINER.
const zwj = '\u200d'

func needsEscape(s string, keepLayout bool) bool {
	for i, r := range s {
		if mustEscape(r, keepLayout) {
			return true
		}
		if r == utf8.RuneError {
			if _, size := utf8.DecodeRuneInString(s[i:]); size == 1 {
				return true
			}
		}
	}
	return false
}

// mustEscape reports whether r is escaped in readable text (a zero-width
// joiner inside an emoji sequence aside).
func mustEscape(r rune, keepLayout bool) bool {
	switch {
	case r == '\n' || r == '\t':
		return !keepLayout
	case r < 0x20 || r == 0x7f:
		return true
	case r < 0x80:
		return false
	}
	return unicode.In(r, unicode.Cc, unicode.Cf, unicode.Zl, unicode.Zp)
}

// emojiJoin reports whether a zero-width joiner after prev and before rest
// joins two emoji: prev is a symbol (or an emoji presentation selector or
// skin-tone modifier) and the next character is a symbol.
func emojiJoin(prev rune, rest string) bool {
	next, _ := utf8.DecodeRuneInString(rest)
	isEmoji := func(r rune) bool { return r > 0x7f && unicode.Is(unicode.So, r) }
	return (isEmoji(prev) || prev == '\ufe0f' || (prev >= 0x1f3fb && prev <= 0x1f3ff)) && isEmoji(next)
}

// escapeJSON rewrites, in JSON text made by encoding/json, every character
// that escapeText escapes and encoding/json leaves raw (DEL, C1 controls,
// format characters) as a \u escape. The decoded strings are unchanged:
// structured content keeps the exact bytes, but a client that shows the
// JSON itself shows no bidi override or invisible character.
func escapeJSON(raw []byte) []byte {
	var out []byte
	last := 0
	for i := 0; i < len(raw); {
		if raw[i] < 0x7f {
			i++
			continue
		}
		r, size := utf8.DecodeRune(raw[i:])
		if r < 0x7f || !mustEscape(r, true) || (r == utf8.RuneError && size == 1) {
			i += size
			continue
		}
		if out == nil {
			out = make([]byte, 0, len(raw)+32)
		}
		out = append(out, raw[last:i]...)
		if r > 0xffff {
			r1, r2 := utf16.EncodeRune(r)
			out = appendU(appendU(out, r1), r2)
		} else {
			out = appendU(out, r)
		}
		i += size
		last = i
	}
	if out == nil {
		return raw
	}
	return append(out, raw[last:]...)
}

func appendU(out []byte, r rune) []byte {
	const hex = "0123456789abcdef"
	return append(out, '\\', 'u', hex[r>>12&0xf], hex[r>>8&0xf], hex[r>>4&0xf], hex[r&0xf])
}
