package gitcmd

import (
	"regexp"
	"strings"
	"unicode/utf8"

	"github.com/gitgate/gitgate/backends"
)

// rule maps a fragment of git's stderr (LC_ALL=C) to a category.
type rule struct {
	pattern  *regexp.Regexp
	category backends.Category
}

var rules = []rule{
	{regexp.MustCompile(`(?i)authentication failed|could not read (username|password)|terminal prompts disabled|returned error: 401`), backends.Unauthenticated},
	{regexp.MustCompile(`(?i)returned error: 403|permission to .* denied|transport '.*' not allowed|unable to update url base from redirection|\[remote rejected\]|protected branch|GH006|pre-receive hook declined`), backends.Forbidden},
	{regexp.MustCompile(`(?i)returned error: 429|rate limit`), backends.RateLimited},
	{regexp.MustCompile(`(?i)returned error: 404|repository '.*' not found|repository not found|does not appear to be a git repository|couldn't find remote ref|remote branch .* not found|unknown revision|bad revision|invalid reference|not a valid object name|did not match any|ambiguous argument`), backends.NotFound},
	{regexp.MustCompile(`(?i)returned error: 5\d\d|could not resolve host|failed to connect|connection refused|connection reset|connection timed out|operation timed out|empty reply from server|the remote end hung up`), backends.Unavailable},
	{regexp.MustCompile(`(?i)\[rejected\]|updates were rejected|non-fast-forward|not possible to fast-forward|diverging branches|conflict|would be overwritten|already exists|nothing to commit|no changes added to commit|you are not currently on a branch|unmerged files|stale info`), backends.Conflict},
	{regexp.MustCompile(`(?i)no space left|file too large|disk quota`), backends.ResourceExhausted},
	{regexp.MustCompile(`(?i)fsck error|object file .* is empty|bad object|invalid path|is not a valid`), backends.InvalidArgument},
}

// Classify returns the category of a failed git command from its stderr and
// a short message for the agent: the fatal/error lines, with sandbox paths
// removed (strip is replaced by nothing wherever it occurs).
func Classify(stderr []byte, strip ...string) (backends.Category, string) {
	text := stripAll(string(stderr), strip)
	msg := summary(text)
	for _, r := range rules {
		if r.pattern.MatchString(text) {
			return r.category, msg
		}
	}
	return backends.Internal, msg
}

// stripAll removes every occurrence of each strip string, repeating until
// none is left (a removal can join two halves into a new occurrence).
func stripAll(text string, strip []string) string {
	for changed := true; changed; {
		changed = false
		for _, s := range strip {
			if s != "" && strings.Contains(text, s) {
				text, changed = strings.ReplaceAll(text, s, ""), true
			}
		}
	}
	return text
}

// summary keeps the lines that explain a failure, at most 1 KiB, cut on a
// UTF-8 boundary.
func summary(text string) string {
	var keep []string
	for _, line := range strings.Split(strings.ReplaceAll(text, "\r", "\n"), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || isProgress(line) {
			continue
		}
		keep = append(keep, line)
	}
	msg := strings.Join(keep, "; ")
	if len(msg) > 1024 {
		cut := 1024
		for cut > 0 && !utf8.RuneStart(msg[cut]) {
			cut--
		}
		msg = msg[:cut] + "…"
	}
	if msg == "" {
		msg = "git failed without a message"
	}
	return msg
}

func isProgress(line string) bool {
	for _, p := range []string{"Cloning into", "remote: Counting", "remote: Compressing", "remote: Total", "remote: Enumerating",
		"Receiving objects", "Resolving deltas", "Counting objects", "Compressing objects", "Writing objects", "Enumerating objects",
		"Delta compression", "Unpacking objects", "Total ", "POST git-", "To ", "From "} {
		if strings.HasPrefix(line, p) {
			return true
		}
	}
	return false
}
