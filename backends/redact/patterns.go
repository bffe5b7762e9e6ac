package redact

import (
	"regexp"
	"strings"
)

// rule is one Layer B pattern. has is a cheap prefilter (literal substring
// search); find runs only when has reports a possible match and appends the
// ranges to mask.
type rule struct {
	has  func(s string) bool
	find func(s string, out []span) []span
}

// rules are the Layer B patterns (threats.md §2.1). None of them matches bare
// hex, so commit SHAs survive, and none matches across a line break, which the
// streaming Writer relies on.
var rules = []rule{
	// GitHub classic PAT, OAuth, App user/server and refresh tokens; lengths
	// may grow up to 255 characters.
	reRule(`gh[pousr]_[A-Za-z0-9]{36,251}`, 0, hasGitHubPrefix),
	reRule(`github_pat_[A-Za-z0-9_]{82,}`, 0, hasGitHubPrefix),
	reRule(`glpat-[A-Za-z0-9_-]{20,}`, 0, literals("glpat-")),
	reRule(`glptt-[0-9a-f]{40}`, 0, literals("glptt-")),
	reRule(`GR1348941[A-Za-z0-9_-]{20}`, 0, literals("GR1348941")),
	{has: literals("://"), find: userinfoSpans},
	// Authorization / Proxy-Authorization header values: scheme plus
	// credential. Optional quotes cover JSON ("Authorization": "Bearer x").
	// Values stop at a quote or backslash so JSON text stays well formed.
	reRule(`(?i)((?:proxy-)?authorization"?[ \t]*[:=][ \t]*"?)[^\s"\\]+(?:[ \t]+[^\s"\\]+)?`,
		1, folded("authorization", 'z')),
	// git credential protocol: the value is the rest of the line; an escaped
	// \n, \r or a quote (JSON-encoded output) also ends it.
	reRule(`(?i)(password=)(?:[^\r\n"\\]|\\[^nr"\r\n])*`, 1, folded("password=", '=')),
}

// reRule masks, for every match of expr, the text after capture group keep
// (the whole match when keep is 0).
func reRule(expr string, keep int, has func(string) bool) rule {
	re := regexp.MustCompile(expr)
	return rule{has: has, find: func(s string, out []span) []span {
		for _, m := range re.FindAllStringSubmatchIndex(s, -1) {
			start := m[0]
			if keep > 0 {
				start = m[2*keep+1]
			}
			out = append(out, span{m[0], start, m[1]})
		}
		return out
	}}
}

// literals reports whether s contains any of the literal prefixes.
func literals(lits ...string) func(string) bool {
	return func(s string) bool {
		for _, l := range lits {
			if strings.Contains(s, l) {
				return true
			}
		}
		return false
	}
}

// hasGitHubPrefix reports whether s may hold a GitHub token: whether some '_'
// ends "ghp_", "gho_", "ghu_", "ghs_", "ghr_" or "github_". One scan for the
// rare '_' is cheaper than searching each prefix, as 'g' is common.
func hasGitHubPrefix(s string) bool {
	for i := 0; ; i++ {
		j := strings.IndexByte(s[i:], '_')
		if j < 0 {
			return false
		}
		i += j
		if i >= 3 && s[i-3:i-1] == "gh" && strings.IndexByte("pousr", s[i-1]) >= 0 ||
			i >= 6 && s[i-6:i] == "github" {
			return true
		}
	}
}

// folded reports whether s contains kw (lower-case ASCII) ignoring ASCII case.
// It searches for the rare byte anchor (which must occur in kw) with
// IndexByte and checks the surroundings, which is much cheaper than running
// a case-insensitive regexp over output that cannot match.
func folded(kw string, anchor byte) func(string) bool {
	at := strings.IndexByte(kw, anchor)
	if at < 0 {
		panic("redact: anchor not in keyword " + kw)
	}
	upper := strings.ToUpper(string(anchor))[0]
	return func(s string) bool {
		return scanFold(s, kw, at, anchor) || (upper != anchor && scanFold(s, kw, at, upper))
	}
}

// scanFold looks for kw in s at every occurrence of c, which sits at index at
// of kw.
func scanFold(s, kw string, at int, c byte) bool {
	for i := 0; ; {
		j := strings.IndexByte(s[i:], c)
		if j < 0 {
			return false
		}
		p := i + j - at
		if p >= 0 && p+len(kw) <= len(s) && strings.EqualFold(s[p:p+len(kw)], kw) {
			return true
		}
		i += j + 1
	}
}

// userinfoSpans masks URL userinfo: in "scheme://user:pass@host" and
// "scheme://token@host" the part between "://" and "@". It implements
// `([a-z][a-z0-9+.-]*://)[^/\s@]+@` (case-insensitive) by hand, anchored on
// "://", because URLs are common in git output and an unanchored regexp
// would be slow there.
func userinfoSpans(s string, out []span) []span {
	for i := 0; ; {
		j := strings.Index(s[i:], "://")
		if j < 0 {
			return out
		}
		at := i + j
		if end := userinfoEnd(s, at+3); end > at+3 {
			if letter := schemeLetter(s[:at]); letter >= 0 {
				out = append(out, span{letter, at + 3, end})
			}
		}
		i = at + 3
	}
}

// schemeLetter reports whether prefix ends in a URL scheme, a run of
// [A-Za-z0-9+.-] that contains a letter, by returning the index of the last
// such letter (-1 if there is none).
func schemeLetter(prefix string) int {
	for k := len(prefix) - 1; k >= 0 && isSchemeByte(prefix[k]); k-- {
		if c := prefix[k] | 0x20; c >= 'a' && c <= 'z' {
			return k
		}
	}
	return -1
}

func isSchemeByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
		c == '+' || c == '.' || c == '-'
}

// userinfoEnd returns the index of the '@' ending the userinfo that starts at
// from, or -1 when a '/' or white space comes first.
func userinfoEnd(s string, from int) int {
	for j := from; j < len(s); j++ {
		switch s[j] {
		case '@':
			return j
		case '/', ' ', '\t', '\n', '\r', '\f':
			return -1
		}
	}
	return -1
}
