package gitcmd

import (
	"fmt"
	"net"
	"net/url"
	"path"
	"regexp"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/gitgate/gitgate/backends"
)

// Limits on agent-supplied values.
const (
	MaxURLLength     = 2048
	MaxRefLength     = 200
	MaxPathLength    = 4096
	MaxMessageLength = 64 << 10
	MaxPaths         = 1000
)

func invalid(format string, args ...any) error {
	return backends.Errorf(backends.InvalidArgument, format, args...)
}

// RemotePolicy says which repository URLs a project may use.
type RemotePolicy struct {
	Schemes []string // allowed schemes; https unless the config allows more
	Hosts   []string // allowed "host" or "host:port" values, compared case-insensitively
}

var repoPathPattern = regexp.MustCompile(`^(/[A-Za-z0-9._~-]+)+/?$`)

// ValidateURL checks a repository URL against policy and returns its
// normalised form. It refuses credentials in the URL, other transports
// (ssh, file, ext::, local paths), hosts outside the allow-list, queries,
// fragments and odd paths.
func ValidateURL(raw string, policy RemotePolicy) (string, error) {
	if raw == "" || len(raw) > MaxURLLength || strings.HasPrefix(raw, "-") || hasControl(raw) {
		return "", invalid("url must be a non-empty https URL of at most %d characters without spaces or control characters", MaxURLLength)
	}
	u, err := url.Parse(raw)
	if err != nil || u.Scheme == "" || u.Opaque != "" {
		return "", invalid("url %q is not an absolute URL like https://host/owner/repo.git", raw)
	}
	scheme := strings.ToLower(u.Scheme)
	if !slices.Contains(policy.Schemes, scheme) {
		return "", backends.Errorf(backends.Forbidden, "transport %q is not allowed (allowed: %s)", scheme, strings.Join(policy.Schemes, ", "))
	}
	if u.Host == "" {
		return "", invalid("url %q has no host", raw)
	}
	if u.User != nil {
		return "", invalid("url must not contain credentials; the gateway supplies the project's token itself")
	}
	if u.RawQuery != "" || u.ForceQuery || u.Fragment != "" {
		return "", invalid("url must not have a query or a fragment")
	}
	host := strings.ToLower(u.Host)
	if !hostAllowed(host, policy.Hosts) {
		return "", backends.Errorf(backends.Forbidden, "host %q is not in this project's allowed hosts", u.Host)
	}
	if !repoPathPattern.MatchString(u.Path) || strings.Contains(u.Path, "/.") {
		return "", invalid("url path %q must look like /owner/repo(.git), without '..' or hidden segments", u.Path)
	}
	return scheme + "://" + host + u.Path, nil
}

func hostAllowed(host string, allowed []string) bool {
	if h, _, err := net.SplitHostPort(host); err == nil && h == "" {
		return false
	}
	for _, a := range allowed {
		if strings.EqualFold(a, host) {
			return true
		}
	}
	return false
}

// CredentialHost returns "scheme://host[:port]" of a validated URL.
func CredentialHost(validURL string) string {
	u, err := url.Parse(validURL)
	if err != nil {
		return ""
	}
	return u.Scheme + "://" + u.Host
}

var refPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._/-]*$`)
var hexPattern = regexp.MustCompile(`^[0-9a-fA-F]{40}([0-9a-fA-F]{24})?$`)

// pseudoRefPattern matches HEAD and git's other pseudo-refs (FETCH_HEAD,
// ORIG_HEAD, MERGE_HEAD, CHERRY_PICK_HEAD, ...) in any case: git resolves
// such names in the git directory before refs/heads, so a branch of that
// name would be hidden (or, on a case-insensitive file system, collide).
var pseudoRefPattern = regexp.MustCompile(`(?i)^(([a-z]+_)*head|auto_merge)$`)

// reservedPrefixes are first name components git reads as ref namespaces:
// "heads/x" names refs/heads/x, and "refs/heads/x" given as a branch name
// would become refs/heads/refs/heads/x. "stash" alone is refs/stash.
var reservedPrefixes = []string{"refs", "heads", "remotes", "tags", "notes", "replace", "stash"}

// ValidateBranch checks a branch name against an allow-list stricter than
// git's own rules (so git check-ref-format need not run): ASCII letters,
// digits, '.', '_', '/', '-', not starting with '-' or '.', no '..', '//',
// '@{', '.lock' components, trailing '/' or '.'. It also refuses names git
// would read as something else: a full commit id, HEAD and the other
// pseudo-refs, and names starting with a ref namespace ("refs/", "heads/",
// "remotes/", "tags/", ...). It is the check for names of branches that may
// already exist; a branch the agent creates must also pass
// ValidateNewBranch and CheckNewBranch.
func ValidateBranch(name string) error {
	if err := checkRefShape(name); err != nil {
		return err
	}
	if pseudoRefPattern.MatchString(name) || hexPattern.MatchString(name) {
		return invalid("branch name %q is ambiguous with HEAD, a pseudo-ref or a commit id; choose another name", name)
	}
	first, _, _ := strings.Cut(name, "/")
	for _, p := range reservedPrefixes {
		if strings.EqualFold(first, p) {
			if rest, ok := strings.CutPrefix(name, first+"/"); ok {
				return invalid("branch name %q starts with %q, which git reads as a ref namespace, so it would not name the branch you mean; name the branch without that prefix (for example %q)", name, first+"/", strings.TrimPrefix(strings.TrimPrefix(rest, "heads/"), "refs/heads/"))
			}
			if strings.EqualFold(name, "stash") {
				return invalid("branch name %q is reserved by git (refs/stash); choose another name", name)
			}
		}
	}
	return nil
}

// MinHexBranchRefused is the length from which an all-hexadecimal name is
// refused for a new branch whatever the repository holds: git abbreviates
// commit ids to 7 characters by default, so such a name would hide the
// commit an agent or a reviewer names by its short id (a ref wins over an
// abbreviated id when git resolves a name). Shorter all-hexadecimal names
// (4 to 6 characters, such as "add", "cafe" or "decade") stay usable unless
// they abbreviate an object the repository holds (see ShortHexName).
const MinHexBranchRefused = 7

var allHex = regexp.MustCompile(`^[0-9a-fA-F]+$`)

// ValidateNewBranch checks the name of a branch the agent creates:
// ValidateBranch, and not an all-hexadecimal name of MinHexBranchRefused
// to 64 characters (which looks like a commit id). CheckNewBranch then
// compares it with the repository's refs.
func ValidateNewBranch(name string) error {
	if err := ValidateBranch(name); err != nil {
		return err
	}
	if allHex.MatchString(name) && len(name) >= MinHexBranchRefused {
		return invalid("branch name %q looks like a commit id (only hexadecimal digits, %d or more), so it would hide that commit from anyone naming it; choose a name with other letters, for example %q", name, MinHexBranchRefused, "branch-"+name)
	}
	return nil
}

// ShortHexName reports whether name is an all-hexadecimal name short enough
// to be allowed as a new branch only when it abbreviates no object (4 to
// MinHexBranchRefused-1 characters; git does not resolve shorter ids).
func ShortHexName(name string) bool {
	return allHex.MatchString(name) && len(name) >= 4 && len(name) < MinHexBranchRefused
}

// AbbreviatedObject is the refusal of a short all-hexadecimal branch name
// that abbreviates an object of the repository.
func AbbreviatedObject(name string) error {
	return invalid("branch name %q abbreviates a commit or object id of this repository, so it would hide that object from anyone naming it; choose a name with other letters, for example %q", name, "branch-"+name)
}

// CheckNewBranch compares the name of a branch to create with the
// repository's refs (full names: refs/heads/..., refs/remotes/...,
// refs/tags/...) and its remotes' names. It refuses a name that shadows a
// remote-tracking branch ("origin/main", or any name starting with a
// remote's name and '/'), equals a remote's or a tag's name, or differs only
// in case from an existing local branch, remote-tracking branch (with or
// without its remote's prefix), remote or tag: git would resolve such a
// name to something other than what a reader expects, or two refs would
// collide on a case-insensitive file system. The branch's own exact name is
// not compared (creating an existing branch is git's conflict).
func CheckNewBranch(name string, remotes, refs []string) error {
	first, _, hasSlash := strings.Cut(name, "/")
	for _, r := range remotes {
		switch {
		case strings.EqualFold(name, r):
			return invalid("branch name %q is the name of the remote %q, which git reads as that remote's default branch; choose another name", name, r)
		case hasSlash && strings.EqualFold(first, r):
			return invalid("branch name %q starts with the remote name %q, so it would shadow the remote-tracking branch of that name; choose a name that does not start with %q", name, r, r+"/")
		}
	}
	for _, ref := range refs {
		var short, kind string
		switch {
		case strings.HasPrefix(ref, "refs/heads/"):
			short, kind = strings.TrimPrefix(ref, "refs/heads/"), "branch"
		case strings.HasPrefix(ref, "refs/remotes/"):
			short, kind = strings.TrimPrefix(ref, "refs/remotes/"), "remote-tracking branch"
			if _, branch, ok := strings.Cut(short, "/"); ok && branch != name && strings.EqualFold(branch, name) {
				return invalid("branch name %q differs only in case from the remote branch %q; names that differ only in case collide on case-insensitive file systems and mislead readers; check out %q instead or choose a distinct name", name, branch, branch)
			}
		case strings.HasPrefix(ref, "refs/tags/"):
			short, kind = strings.TrimPrefix(ref, "refs/tags/"), "tag"
		default:
			continue
		}
		switch {
		case short == name && kind == "branch":
			continue
		case short == name:
			return invalid("branch name %q is already the name of a %s, and git would resolve the name to the %s; choose another name", name, kind, kind)
		case strings.EqualFold(short, name):
			return invalid("branch name %q differs only in case from the existing %s %q; names that differ only in case collide on case-insensitive file systems and mislead readers; use %q or choose a distinct name", name, kind, short, short)
		}
	}
	return nil
}

func checkRefShape(name string) error {
	switch {
	case name == "":
		return invalid("a branch or ref name is required")
	case len(name) > MaxRefLength:
		return invalid("ref name is longer than %d characters", MaxRefLength)
	case !refPattern.MatchString(name):
		if r, what, bad := firstSuspicious(name); bad {
			return invalid("ref name contains %s; ref names may only contain ASCII letters, digits, '.', '_', '/' and '-'", describeRune(r, what))
		}
		return invalid("ref name %q may only contain ASCII letters, digits, '.', '_', '/' and '-', and must start with a letter or digit", name)
	case strings.Contains(name, "..") || strings.Contains(name, "//") || strings.HasSuffix(name, "/") || strings.HasSuffix(name, "."):
		return invalid("ref name %q must not contain '..' or '//' nor end with '/' or '.'", name)
	}
	for _, part := range strings.Split(name, "/") {
		if strings.HasPrefix(part, ".") || strings.HasSuffix(part, ".lock") {
			return invalid("ref name %q has a component starting with '.' or ending with '.lock'", name)
		}
	}
	return nil
}

var (
	revSuffix      = regexp.MustCompile(`([~^][0-9]{0,4})+$`)
	abbrevCommitID = regexp.MustCompile(`^[0-9a-fA-F]{4,64}$`)
)

// ValidateRev checks a revision an agent names (for diff and log): a
// branch, tag, remote-tracking branch, HEAD or a commit id, optionally
// followed by ~N or ^N suffixes.
func ValidateRev(rev string) error {
	base := revSuffix.ReplaceAllString(rev, "")
	if base == "HEAD" || abbrevCommitID.MatchString(base) {
		return nil
	}
	return checkRefShape(base)
}

// ValidatePath checks a work-tree path and returns it cleaned: relative,
// no '..' component, no NUL or control characters (C0, DEL, C1, line
// separators), no Unicode bidirectional controls or zero-width characters
// (refused naming the character, e.g. "U+202E (right-to-left override)";
// files with such names in the repository stay readable through listings),
// no component named .git
// (in any case), at most MaxPathLength bytes. "" and "." mean the root and
// are allowed only when allowRoot is set.
func ValidatePath(p string, allowRoot bool) (string, error) {
	if len(p) > MaxPathLength || !utf8.ValidString(p) {
		return "", invalid("path must be valid UTF-8 of at most %d bytes", MaxPathLength)
	}
	if r, what, bad := firstSuspicious(p); bad {
		return "", invalid("path contains %s; such characters make a path look different from what it is, so paths may not contain control, bidirectional or invisible characters", describeRune(r, what))
	}
	if hasControl(p) {
		return "", invalid("path must not contain control characters or line breaks")
	}
	if strings.HasPrefix(p, "/") || strings.Contains(p, "\\") {
		return "", invalid("path %q must be relative to the work tree and use '/'", p)
	}
	for _, part := range strings.Split(p, "/") {
		if part == ".." {
			return "", invalid("path %q must not contain '..'", p)
		}
		if strings.EqualFold(strings.TrimRight(part, ". "), ".git") {
			return "", backends.Errorf(backends.Forbidden, "path %q names a .git entry; the git directory is managed by the gateway", p)
		}
	}
	clean := path.Clean(p)
	if clean == "." && !allowRoot {
		return "", invalid("a file path is required")
	}
	return clean, nil
}

// ValidatePaths validates a list of paths (for commit and diff).
func ValidatePaths(paths []string) ([]string, error) {
	if len(paths) > MaxPaths {
		return nil, invalid("at most %d paths may be given", MaxPaths)
	}
	out := make([]string, 0, len(paths))
	for _, p := range paths {
		c, err := ValidatePath(p, false)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, nil
}

var workspacePattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

// ValidateWorkspace checks a workspace name.
func ValidateWorkspace(name string) error {
	if !workspacePattern.MatchString(name) || strings.Contains(name, "..") {
		return invalid("workspace name %q must be 1-64 ASCII letters, digits, '.', '_' or '-', starting with a letter or digit", name)
	}
	return nil
}

// ValidateMessage checks a commit message: non-empty, valid UTF-8, at most
// MaxMessageLength bytes, no control characters (C0 but newline and tab,
// DEL, C1) and no bidirectional controls (they make reviewed text lie).
func ValidateMessage(msg string) error {
	switch {
	case strings.TrimSpace(msg) == "":
		return invalid("commit message must not be empty")
	case len(msg) > MaxMessageLength:
		return backends.Errorf(backends.ResourceExhausted, "commit message is longer than %d bytes", MaxMessageLength)
	case !utf8.ValidString(msg):
		return invalid("commit message must be valid UTF-8")
	}
	for _, r := range msg {
		if (r < 0x20 && r != '\n' && r != '\t') || (r >= 0x7f && r <= 0x9f) || isBidiControl(r) {
			return invalid("commit message contains a control or bidirectional-override character (U+%04X)", r)
		}
	}
	return nil
}

// ValidateIdentity checks an author name and e-mail from the configuration.
func ValidateIdentity(name, email string) error {
	if name == "" || email == "" || strings.ContainsAny(name+email, "<>\n\r\x00") {
		return invalid("author name and email must be set and must not contain '<', '>' or newlines")
	}
	return nil
}

func hasControl(s string) bool {
	return strings.ContainsFunc(s, func(r rune) bool { return unicode.IsControl(r) || unicode.IsSpace(r) && r != ' ' })
}

func isBidiControl(r rune) bool {
	return (r >= 0x202A && r <= 0x202E) || (r >= 0x2066 && r <= 0x2069) || r == 0x200E || r == 0x200F || r == 0x061C
}

// suspiciousNames names the invisible characters refused in agent-supplied
// paths and names: bidirectional controls, which reorder how text is shown
// ("invoice\u202etxt.exe" shows as "invoiceexe.txt"), and zero-width
// characters, which make two different names look the same.
var suspiciousNames = map[rune]string{
	0x061C: "Arabic letter mark",
	0x200B: "zero width space",
	0x200C: "zero width non-joiner",
	0x200D: "zero width joiner",
	0x200E: "left-to-right mark",
	0x200F: "right-to-left mark",
	0x202A: "left-to-right embedding",
	0x202B: "right-to-left embedding",
	0x202C: "pop directional formatting",
	0x202D: "left-to-right override",
	0x202E: "right-to-left override",
	0x2060: "word joiner",
	0x2066: "left-to-right isolate",
	0x2067: "right-to-left isolate",
	0x2068: "first strong isolate",
	0x2069: "pop directional isolate",
	0xFEFF: "zero width no-break space",
}

// firstSuspicious returns the first control (C0, DEL, C1), bidirectional
// control or zero-width character of s and its description.
func firstSuspicious(s string) (rune, string, bool) {
	for _, r := range s {
		switch {
		case r < 0x20 || r == 0x7f || (r >= 0x80 && r <= 0x9f):
			return r, "control character", true
		case suspiciousNames[r] != "":
			return r, suspiciousNames[r], true
		}
	}
	return 0, "", false
}

// describeRune renders r as "U+202E (right-to-left override)", never raw.
func describeRune(r rune, what string) string {
	return fmt.Sprintf("U+%04X (%s)", r, what)
}
