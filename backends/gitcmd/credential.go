package gitcmd

import "strings"

// credentialHelper is an inline credential helper (git runs "!..." helpers
// with /bin/sh and appends the action). It answers "get" only when the
// protocol and host git asks about are in GITGATE_CRED_HOSTS, so a remote
// URL rewritten or redirected to another host never receives the token. It
// reads the token from GITGATE_CRED_FILE when set, else from GITGATE_TOKEN;
// the token itself is never part of any argument. Only shell built-ins run.
const credentialHelper = `!f() { test "$1" = get || exit 0; p=; h=; ` +
	`while IFS= read -r l; do case "$l" in "") break;; protocol=*) p=${l#protocol=};; host=*) h=${l#host=};; esac; done; ` +
	`for a in $GITGATE_CRED_HOSTS; do if [ "$a" = "$p://$h" ]; then ` +
	`printf 'username=%s\n' "$GITGATE_CRED_USER"; ` +
	`if [ -n "$GITGATE_CRED_FILE" ]; then IFS= read -r t < "$GITGATE_CRED_FILE"; printf 'password=%s\n' "$t"; ` +
	`else printf 'password=%s\n' "$GITGATE_TOKEN"; fi; exit 0; fi; done; }; f`

func credentialEnv(r *Remote) []string {
	if r.Token == "" && r.TokenFile == "" {
		return nil
	}
	user := r.Username
	if user == "" {
		user = "x-access-token"
	}
	env := []string{
		"GITGATE_CRED_HOSTS=" + strings.Join(r.CredentialHosts, " "),
		"GITGATE_CRED_USER=" + user,
	}
	if r.TokenFile != "" {
		return append(env, "GITGATE_CRED_FILE="+r.TokenFile)
	}
	return append(env, "GITGATE_TOKEN="+r.Token)
}
