package gitcmd

import (
	"bytes"
	"regexp"
	"strings"

	"github.com/gitgate/gitgate/backends"
)

// A repository's own configuration ($GIT_DIR/config) is read by every git
// command and can redirect traffic or credentials with keys that "-c"
// cannot neutralise, because their names embed a pattern
// (url.<base>.insteadOf, http.<url>.proxy, credential.<url>.helper,
// includeIf.<condition>.path). The gateway owns the git directory and
// writes only a handful of keys there, so before every command that talks
// to the remote the caller lists the file (LocalConfigArgs) and
// CheckLocalConfig refuses the command if it holds anything else: an
// allow-list is complete where a deny-list of dangerous keys never is.

// LocalConfigArgs returns the arguments of the git command that lists the
// repository configuration file of gitDir, without following includes (an
// include is itself refused), as NUL-terminated "key\nvalue" entries.
func LocalConfigArgs(gitDir string) []string {
	return []string{"config", "--file=" + gitDir + "/config", "--no-includes", "--null", "--list"}
}

// plainKeys are the keys git init and clone write that cannot redirect
// anything; any value is accepted.
var plainKeys = map[string]bool{
	"core.repositoryformatversion": true,
	"core.filemode":                true,
	"core.bare":                    true,
	"core.logallrefupdates":        true,
	"core.ignorecase":              true,
	"core.precomposeunicode":       true,
	"core.symlinks":                true,
	"extensions.objectformat":      true,
}

// fetchRefspec is a refspec git clone writes: all branches, or one branch
// for a shallow (single-branch) clone, into origin's remote-tracking refs.
var fetchRefspec = regexp.MustCompile(`^\+?refs/heads/([A-Za-z0-9._/*-]+):refs/remotes/origin/([A-Za-z0-9._/*-]+)$`)

// CheckLocalConfig checks the output of LocalConfigArgs against the keys
// the gateway writes: core settings of git init, the remote "origin" with
// url originURL ("" for a repository that has no remote, such as a scratch
// repository a URL is fetched into explicitly) and clone's fetch refspec,
// and branch.<name>.remote ("origin" or ".") and branch.<name>.merge
// (refs/heads/...). Anything else (another remote, url.*.insteadOf,
// http.*, credential.*, include.*, core.sshCommand, remote.origin.pushurl,
// ...) is refused with an internal error naming the key in the form
// SafeConfigKey gives, never its value. key is that form ("" when the
// configuration is acceptable), for the caller's error log.
func CheckLocalConfig(list []byte, originURL string) (key string, err error) {
	for entry := range bytes.SplitSeq(list, []byte{0}) {
		if len(entry) == 0 {
			continue
		}
		k, v, _ := strings.Cut(string(entry), "\n")
		if !allowedConfig(k, v, originURL) {
			key = SafeConfigKey(k)
			return key, backends.Errorf(backends.Internal,
				"the workspace's git configuration holds a setting the gateway did not write (%s); no remote command runs in this workspace until an operator removes it", key)
		}
	}
	return "", nil
}

func allowedConfig(key, value, originURL string) bool {
	if plainKeys[key] {
		return true
	}
	section, rest, ok := strings.Cut(key, ".")
	if !ok {
		return false
	}
	i := strings.LastIndexByte(rest, '.')
	if i < 0 {
		return false
	}
	sub, name := rest[:i], rest[i+1:]
	switch section {
	case "remote":
		if sub != "origin" {
			return false
		}
		switch name {
		case "url":
			return originURL != "" && value == originURL
		case "fetch":
			m := fetchRefspec.FindStringSubmatch(value)
			return m != nil && m[1] == m[2]
		}
	case "branch":
		if ValidateBranch(sub) != nil {
			return false
		}
		switch name {
		case "remote":
			return value == "origin" || value == "."
		case "merge":
			return strings.HasPrefix(value, "refs/heads/") && ValidateBranch(strings.TrimPrefix(value, "refs/heads/")) == nil
		}
	}
	return false
}

var safeSubsection = regexp.MustCompile(`^[A-Za-z0-9._/-]{1,64}$`)

// SafeConfigKey returns a configuration key fit for logs and errors: the
// subsection (the part between the first and the last dot) is kept only
// when it is a plain name, and replaced by "<…>" otherwise, since it may be
// a URL with credentials in it (http.https://user:token@host/.proxy).
func SafeConfigKey(key string) string {
	section, rest, ok := strings.Cut(key, ".")
	if !ok {
		return "<…>"
	}
	i := strings.LastIndexByte(rest, '.')
	if i < 0 {
		return section + "." + rest
	}
	sub, name := rest[:i], rest[i+1:]
	if !safeSubsection.MatchString(sub) {
		sub = "<…>"
	}
	return section + "." + sub + "." + name
}
