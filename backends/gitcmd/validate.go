package gitcmd

import (
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

// ValidateBranch checks a branch name against an allow-list stricter than
// git's own rules (so git check-ref-format need not run): ASCII letters,
// digits, '.', '_', '/', '-', not starting with '-' or '.', no '..', '//',
// '@{', '.lock' components, trailing '/' or '.', and not a full commit id.
func ValidateBranch(name string) error {
	if err := checkRefShape(name); err != nil {
		return err
	}
	if name == "HEAD" || hexPattern.MatchString(name) {
		return invalid("branch name %q is ambiguous with HEAD or a commit id", name)
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
// no '..' component, no NUL or control characters, no component named .git
// (in any case), at most MaxPathLength bytes. "" and "." mean the root and
// are allowed only when allowRoot is set.
func ValidatePath(p string, allowRoot bool) (string, error) {
	if len(p) > MaxPathLength || !utf8.ValidString(p) || hasControl(p) {
		return "", invalid("path must be valid UTF-8 without control characters and at most %d bytes", MaxPathLength)
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
