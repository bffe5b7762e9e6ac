package gitcmd

import (
	"fmt"
	"regexp"
	"strings"
	"unicode/utf8"

	"github.com/gitgate/gitgate/backends"
)

// rule maps a fragment of git's stderr (LC_ALL=C) to a category. say, when
// set, writes the agent's message from the pattern's submatches instead of
// git's own lines: what happened and the next step, in a sentence.
type rule struct {
	pattern  *regexp.Regexp
	category backends.Category
	say      func(m []string) string
}

// sayRules are tried first: failures whose raw git text does not tell an
// agent what to do, each with its own sentence.
var sayRules = []rule{
	// A branch name that is a directory of other branches, or whose
	// directory is taken by a branch ("a/b" beside "a"): refs are files.
	{regexp.MustCompile(`cannot lock ref '(?:refs/heads/)?([^']*)': '(?:refs/heads/)?([^']*)' exists`), backends.Conflict, func(m []string) string {
		return fmt.Sprintf("branch %q cannot be created because branch %q exists (a branch name cannot be both a branch and a directory of branches, as in \"a\" and \"a/b\"); choose another name", m[1], m[2])
	}},
	{regexp.MustCompile(`cannot lock ref '(?:refs/heads/)?([^']*)': there is a non-empty directory`), backends.Conflict, func(m []string) string {
		return fmt.Sprintf("branch %q cannot be created because branches named %q/… exist (a branch name cannot be both a branch and a directory of branches); choose another name", m[1], m[1])
	}},
	// A stale index.lock: the executor removes it and retries once
	// (IsIndexLocked); this is what is left when that did not help.
	{regexp.MustCompile(`Unable to create '[^']*index\.lock': File exists`), backends.Unavailable, func([]string) string {
		return "the workspace's git index is locked (index.lock exists) by another git process; retry in a moment"
	}},
	// A path through a symbolic link in the work tree: git refuses it, and
	// so does the request (nothing is changed).
	{regexp.MustCompile(`'([^']*)' is beyond a symbolic link`), backends.InvalidArgument, func(m []string) string {
		return fmt.Sprintf("path %q goes through a symbolic link in the work tree, which git does not follow; name the link itself or a path without links", m[1])
	}},
	{regexp.MustCompile(`(?i)nothing to commit|nothing added to commit|no changes added to commit`), backends.Conflict, func([]string) string {
		return "nothing to commit: the work tree (or the given paths) has no changes; write or delete files first"
	}},
	{regexp.MustCompile(`(?i)not possible to fast-forward|diverging branches`), backends.Conflict, func([]string) string {
		return "the local branch and the remote branch have diverged, so a fast-forward is not possible; pull with mode: merge to merge them"
	}},
	// The git relay (backends/relay) cut a transfer off at the project's
	// size limit.
	{regexp.MustCompile(`(?i)remote error: gitgate relay: ([^\n]*?)\s*\(resource_exhausted\)`), backends.ResourceExhausted, func(m []string) string {
		return strings.TrimSpace(m[1]) + "; the repository is larger than the project's size limit (limits.max_repo_bytes)"
	}},
	// The remote answered with an error packet (git daemon, ssh servers,
	// some HTTP servers): a deliberate refusal of this request by the
	// remote, not a failure of the gateway's backend. A missing object or
	// repository is not_found; anything else is forbidden (the remote
	// would refuse the same request again, so it must not count against
	// a backend's health).
	{regexp.MustCompile(`(?i)remote error: ([^\n]*(?:not our ref|not found|no such repository|does not exist)[^\n]*)`), backends.NotFound, func(m []string) string {
		return fmt.Sprintf("the remote refused the request: %s; check the repository URL and the ref", strings.TrimSpace(m[1]))
	}},
	{regexp.MustCompile(`(?i)remote error: ([^\n]*)`), backends.Forbidden, func(m []string) string {
		return fmt.Sprintf("the remote refused the request: %s; check the repository URL and the project's access to it", strings.TrimSpace(m[1]))
	}},
}

var rules = []rule{
	{pattern: regexp.MustCompile(`(?i)authentication failed|could not read (username|password)|terminal prompts disabled|returned error: 401`), category: backends.Unauthenticated},
	{pattern: regexp.MustCompile(`(?i)returned error: 403|permission to .* denied|transport '.*' not allowed|unable to update url base from redirection|\[remote rejected\]|protected branch|GH006|pre-receive hook declined`), category: backends.Forbidden},
	{pattern: regexp.MustCompile(`(?i)returned error: 429|rate limit`), category: backends.RateLimited},
	{pattern: regexp.MustCompile(`(?i)returned error: 404|repository '.*' not found|repository not found|does not appear to be a git repository|couldn't find remote ref|remote branch .* not found|unknown revision|bad revision|invalid reference|not a valid object name|did not match any|ambiguous argument`), category: backends.NotFound},
	{pattern: regexp.MustCompile(`(?i)returned error: 5\d\d|could not resolve host|failed to connect|connection refused|connection reset|connection timed out|operation timed out|empty reply from server|the remote end hung up`), category: backends.Unavailable},
	{pattern: regexp.MustCompile(`(?i)\[rejected\]|updates were rejected|non-fast-forward|conflict|would be overwritten|already exists|you are not currently on a branch|unmerged files|stale info`), category: backends.Conflict},
	{pattern: regexp.MustCompile(`(?i)no space left|file too large|disk quota`), category: backends.ResourceExhausted},
	{pattern: regexp.MustCompile(`(?i)fsck error|object file .* is empty|bad object|invalid path|is not a valid`), category: backends.InvalidArgument},
}

// Classify returns the category of a failed git command from its stderr and
// a short message for the agent: a sentence saying what happened and what
// to do for the failures that have one, else git's fatal/error lines. Sandbox
// paths are removed (each strip string is replaced by nothing wherever it
// occurs), from the sentences' quoted names too.
func Classify(stderr []byte, strip ...string) (backends.Category, string) {
	text := stripAll(string(stderr), strip)
	for _, r := range sayRules {
		if m := r.pattern.FindStringSubmatch(text); m != nil {
			return r.category, summary(r.say(m))
		}
	}
	msg := summary(text)
	for _, r := range rules {
		if r.pattern.MatchString(text) {
			return r.category, msg
		}
	}
	return backends.Internal, msg
}

// indexLocked matches git's refusal to run because index.lock exists.
var indexLocked = regexp.MustCompile(`Unable to create '[^']*index\.lock': File exists`)

// IsIndexLocked reports whether a failed git command's stderr says that
// the index is locked by an index.lock file. gitgate runs every write of a
// workspace under the workspace's write lock and reads with
// GIT_OPTIONAL_LOCKS=0, so such a file met by a write is stale: left by a
// git that crashed or was killed.
func IsIndexLocked(stderr []byte) bool { return indexLocked.Match(stderr) }

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
