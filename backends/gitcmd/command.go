// Package gitcmd builds hardened git invocations and parses git's output.
//
// Every invocation uses an absolute git path, no shell, an environment built
// from scratch, command-line configuration that switches off everything a
// repository or a hostile remote could use to run code or redirect
// credentials (hooks, fsmonitor, pagers, editors, external diff, submodule
// recursion, non-allowed transports), and puts user values after "--" or as
// the value of a fixed option. See threats.md §1 for the reasons.
//
// Immunity to the repository's own configuration. The environment shuts
// out the system and global configuration (GIT_CONFIG_NOSYSTEM,
// GIT_CONFIG_SYSTEM and GIT_CONFIG_GLOBAL point nowhere) and passes no
// GIT_CONFIG_COUNT/GIT_CONFIG_PARAMETERS nor proxy variables, since it is
// built from scratch; GIT_CEILING_DIRECTORIES keeps commands run without
// --git-dir from finding a repository above the sandbox root. That leaves
// $GIT_DIR/config, which the gateway owns but defends in two layers
// anyway. First, "-c" overrides every fixed key
// that could redirect traffic or credentials and has a safe reset value
// (http.proxy and remote.origin.proxy empty: no proxy; http.extraHeader and
// http.curloptResolve empty: no headers, no forced addresses;
// http.sslVerify, core.sshCommand, core.gitProxy, credential.helper).
// Second, and completely: keys whose names embed a pattern
// (url.<base>.insteadOf, http.<url>.*, credential.<url>.*,
// includeIf.<condition>.path) and keys without a safe reset value
// (http.sslCAInfo, remote.origin.pushurl, ...) cannot be neutralised by
// "-c", so before every command that talks to the remote in an existing
// repository the caller lists the repository's configuration file
// (LocalConfigArgs) and CheckLocalConfig refuses the command unless every
// key is one the gateway writes (see localconfig.go).
//
// The package only builds and parses; running is the sandbox provider's job.
package gitcmd

import (
	"path"
	"slices"
	"strings"
)

// DefaultGitPath is git's absolute path in sandboxes.
const DefaultGitPath = "/usr/bin/git"

// Invocation is one git command to run in a workspace.
type Invocation struct {
	GitDir   string   // absolute git directory, owned by the gateway
	WorkTree string   // absolute work tree; "" for commands that need none
	Args     []string // the subcommand and its arguments, built by this package
	// ReadOnly sets GIT_OPTIONAL_LOCKS=0 so reads never rewrite the index
	// and can run beside a writer.
	ReadOnly bool
	// Remote is set for commands that talk to the remote (clone, fetch,
	// pull, push, ls-remote).
	Remote *Remote
	// Identity is set for commands that may create commits.
	Identity *Identity
	// Scratch, if set, sends the command's index and new objects to
	// scratch files, so that it can build trees and commits without
	// touching the repository (shadow predictions).
	Scratch *Scratch
}

// Scratch is a private index file and object directory (which must
// exist); the repository's own objects stay readable as alternates.
type Scratch struct {
	IndexFile  string // GIT_INDEX_FILE
	ObjectDir  string // GIT_OBJECT_DIRECTORY
	Alternates string // GIT_ALTERNATE_OBJECT_DIRECTORIES: the repository's object directory
}

// Remote carries what a network command needs: the transports and hosts the
// project allows, and how the credential helper finds the project's token.
type Remote struct {
	// URL is the repository URL recorded for the workspace: the only value
	// remote.origin.url may have (CheckLocalConfig). "" for commands that
	// name the URL themselves outside a workspace.
	URL     string
	Schemes []string // allowed transports, e.g. ["https"]
	// CredentialHosts are "scheme://host[:port]" values the credential
	// helper answers for; it answers nothing for any other host.
	CredentialHosts []string
	Username        string // user name sent with the token (e.g. "x-access-token")
	// Token is passed to the helper through the child's environment. It
	// never appears in arguments. Empty means no credentials.
	Token string
	// TokenFile, if set, is read by the helper instead of Token (for
	// sandboxes whose command environment is logged).
	TokenFile string
	// Project is the project whose remote this is (a relay's capability
	// names it).
	Project string
	// Relay, if set, is a git relay's URL for URL (backends/relay: a
	// capability URL) that the command's traffic goes through instead of
	// git holding a token: git is told url.<Relay>.insteadOf=<URL>, the
	// relay's scheme is allowed for this command only, and no credential
	// helper is set up. remote.origin.url stays URL.
	Relay string
}

// relayScheme is the scheme of r's relay URL ("" without one).
func (r *Remote) relayScheme() string {
	if r == nil || r.Relay == "" {
		return ""
	}
	scheme, _, _ := strings.Cut(r.Relay, "://")
	return strings.ToLower(scheme)
}

// schemes are the transports r's command may use.
func (r *Remote) schemes() []string {
	s := r.Schemes
	if rs := r.relayScheme(); rs != "" && !slices.Contains(s, rs) {
		s = append(slices.Clone(s), rs)
	}
	return s
}

// Identity is the author and committer of commits the command makes.
type Identity struct {
	Name, Email string
	// AuthorDate and CommitterDate, if set, fix the commit's dates (git's
	// raw "<seconds> <zone>" form), to reproduce a commit exactly.
	AuthorDate, CommitterDate string
}

// Command is a ready-to-run program invocation.
type Command struct {
	Path string
	Args []string
	Env  []string
}

// hardening is command-line configuration applied to every invocation. "-c"
// has the highest precedence, so these win over anything in a repository's
// config. Values that take a program are set to nothing or to "false".
// diff.external cannot be reset this way (an empty value is run as a
// program), so Build gives diff-producing subcommands --no-ext-diff and
// --no-textconv instead (see diffSafe).
var hardening = []string{
	"protocol.allow=never",
	"protocol.file.allow=never",
	"core.hooksPath=/dev/null",
	"core.fsmonitor=false",
	"core.sshCommand=/bin/false",
	"core.gitProxy=",
	"core.askPass=",
	"core.pager=cat",
	"core.editor=false",
	"sequence.editor=false",
	"core.protectNTFS=true",
	"core.protectHFS=true",
	"transfer.fsckObjects=true",
	"fetch.fsckObjects=true",
	"submodule.recurse=false",
	"fetch.recurseSubmodules=false",
	"gc.auto=0",
	"maintenance.auto=false",
	"http.followRedirects=false",
	"http.sslVerify=true",
	"http.lowSpeedLimit=1000",
	"http.lowSpeedTime=60",
	"commit.gpgSign=false",
	"tag.gpgSign=false",
	"gpg.program=false",
	"color.ui=false",
	"advice.detachedHead=false",
	"init.defaultBranch=main",
	"core.quotePath=false",
	"credential.useHttpPath=false",
	"credential.helper=",
	// Traffic and credential redirection with a safe reset value (the
	// rest is refused by CheckLocalConfig before remote commands).
	"http.proxy=",
	"remote.origin.proxy=",
	"http.extraHeader=",
	"http.curloptResolve=",
	"http.saveCookies=false",
}

// hardeningArgs is hardening as "-c key=value" arguments, built once.
var hardeningArgs = func() []string {
	args := make([]string, 0, 2*len(hardening))
	for _, kv := range hardening {
		args = append(args, "-c", kv)
	}
	return args
}()

// Build returns the command for inv, run by the git at gitPath (absolute) in
// a sandbox whose HOME and TMPDIR are home and tmp.
func Build(gitPath, home, tmp string, inv Invocation) Command {
	args := make([]string, 0, len(hardeningArgs)+12+len(inv.Args))
	args = append(args, hardeningArgs...)
	args = append(args, remoteConfig(inv.Remote)...)
	args = append(args, "--no-pager", "--literal-pathspecs")
	if inv.GitDir != "" {
		args = append(args, "--git-dir="+inv.GitDir)
	}
	if inv.WorkTree != "" {
		args = append(args, "--work-tree="+inv.WorkTree)
	}
	args = append(args, diffSafe(inv.Args)...)
	return Command{Path: gitPath, Args: args, Env: environment(home, tmp, inv)}
}

// diffSafe adds --no-ext-diff and --no-textconv right after subcommands that
// can produce diffs, so that no external diff or textconv program configured
// anywhere runs.
func diffSafe(args []string) []string {
	if len(args) == 0 {
		return args
	}
	switch args[0] {
	case "diff", "log", "show":
		return append([]string{args[0], "--no-ext-diff", "--no-textconv"}, args[1:]...)
	}
	return args
}

func remoteConfig(r *Remote) []string {
	if r == nil {
		return nil
	}
	var args []string
	for _, s := range r.schemes() {
		args = append(args, "-c", "protocol."+s+".allow=always")
	}
	if r.Relay != "" && r.URL != "" {
		return append(args, "-c", "url."+r.Relay+".insteadOf="+r.URL)
	}
	if r.Token != "" || r.TokenFile != "" {
		args = append(args, "-c", "credential.helper="+credentialHelper)
	}
	return args
}

func environment(home, tmp string, inv Invocation) []string {
	env := []string{
		"PATH=/usr/bin:/bin",
		"HOME=" + home,
		"TMPDIR=" + tmp,
		"LC_ALL=C",
		"LANG=C",
		"GIT_CONFIG_NOSYSTEM=1",
		"GIT_CONFIG_GLOBAL=/dev/null",
		"GIT_CONFIG_SYSTEM=/dev/null",
		"GIT_TERMINAL_PROMPT=0",
		"GIT_ASKPASS=/bin/false",
		"SSH_ASKPASS=/bin/false",
		"GIT_NO_REPLACE_OBJECTS=1",
		"GIT_LITERAL_PATHSPECS=1",
		"GIT_PROTOCOL_FROM_USER=0",
		// Commands without --git-dir (clone, ls-remote, config --file) run
		// in the sandbox root and would otherwise look for a repository in
		// every directory above it and read its configuration (a gateway
		// whose data directory lies inside a checkout would apply that
		// checkout's url.*.insteadOf). home is "<sandbox root>/home", so
		// discovery stops at the sandbox root.
		"GIT_CEILING_DIRECTORIES=" + path.Dir(path.Dir(home)),
	}
	if inv.ReadOnly {
		env = append(env, "GIT_OPTIONAL_LOCKS=0")
	}
	if r := inv.Remote; r != nil {
		env = append(env, "GIT_ALLOW_PROTOCOL="+strings.Join(r.schemes(), ":"))
		if r.Relay == "" {
			env = append(env, credentialEnv(r)...)
		}
	} else {
		env = append(env, "GIT_ALLOW_PROTOCOL=none")
	}
	if id := inv.Identity; id != nil {
		env = append(env,
			"GIT_AUTHOR_NAME="+id.Name, "GIT_AUTHOR_EMAIL="+id.Email,
			"GIT_COMMITTER_NAME="+id.Name, "GIT_COMMITTER_EMAIL="+id.Email)
		if id.AuthorDate != "" {
			env = append(env, "GIT_AUTHOR_DATE="+id.AuthorDate)
		}
		if id.CommitterDate != "" {
			env = append(env, "GIT_COMMITTER_DATE="+id.CommitterDate)
		}
	}
	if sc := inv.Scratch; sc != nil {
		env = append(env, "GIT_INDEX_FILE="+sc.IndexFile, "GIT_OBJECT_DIRECTORY="+sc.ObjectDir, "GIT_ALTERNATE_OBJECT_DIRECTORIES="+sc.Alternates)
	}
	return env
}
