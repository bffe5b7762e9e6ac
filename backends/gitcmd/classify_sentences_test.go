package gitcmd

import (
	"strings"
	"testing"

	"github.com/gitgate/gitgate/backends"
)

// TestClassifySentences: failures that used to come back as internal (and
// trip breakers), or as git's raw text, get a category and a sentence that
// says what to do, without sandbox paths.
func TestClassifySentences(t *testing.T) {
	const root = "/srv/gitgate/sandboxes/sb-1"
	tests := []struct {
		name, stderr string
		want         backends.Category
		says         []string
	}{
		{"branch under an existing branch", "fatal: cannot lock ref 'refs/heads/a/b': 'refs/heads/a' exists; cannot create 'refs/heads/a/b'\n",
			backends.Conflict, []string{`branch "a/b" cannot be created because branch "a" exists`, "choose another name"}},
		{"branch over a directory of branches", "fatal: cannot lock ref 'refs/heads/a': 'refs/heads/a/b' exists; cannot create 'refs/heads/a'\n",
			backends.Conflict, []string{`"a"`, `"a/b"`, "choose another name"}},
		{"branch over a non-empty directory", "error: cannot lock ref 'refs/heads/a': there is a non-empty directory '" + root + "/git/w/refs/heads/a' blocking reference 'refs/heads/a'\n",
			backends.Conflict, []string{`"a"`, "choose another name"}},
		{"stale index.lock", "fatal: Unable to create '" + root + "/git/w/index.lock': File exists.\n\nAnother git process seems to be running in this repository, e.g.\n" +
			"an editor opened by 'git commit'. Please make sure all processes\nare terminated then try again.\n",
			backends.Unavailable, []string{"index.lock", "retry"}},
		{"symlinked path", "fatal: pathspec 'link/main.go' is beyond a symbolic link\n",
			backends.InvalidArgument, []string{`"link/main.go"`, "symbolic link"}},
		{"nothing to commit", "On branch main\nYour branch is up to date with 'origin/main'.\n\nnothing to commit, working tree clean\n",
			backends.Conflict, []string{"nothing to commit", "write or delete files first"}},
		{"nothing added", "On branch main\nUntracked files:\n\tx\n\nnothing added to commit but untracked files present (use \"git add\" to track)\n",
			backends.Conflict, []string{"nothing to commit"}},
		{"not fast-forward", "hint: Diverging branches can't be fast-forwarded, you need to either:\nhint:\nhint: \tgit merge --no-ff\nfatal: Not possible to fast-forward, aborting.\n",
			backends.Conflict, []string{"diverged", "mode: merge"}},
		{"remote error", "fatal: remote error: access denied or repository not exported: /r.git\n",
			backends.Forbidden, []string{"the remote refused the request: access denied"}},
		{"remote error, not our ref", "fatal: remote error: upload-pack: not our ref 0123456789abcdef0123456789abcdef01234567\n",
			backends.NotFound, []string{"the remote refused the request", "not our ref"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, msg := Classify([]byte(tt.stderr), root+"/ws/", root+"/git/", root)
			if got != tt.want {
				t.Errorf("category %q, want %q (%s)", got, tt.want, msg)
			}
			for _, s := range tt.says {
				if !strings.Contains(msg, s) {
					t.Errorf("message %q does not say %q", msg, s)
				}
			}
			if strings.Contains(msg, root) || strings.Contains(msg, "\n") || strings.Contains(msg, "hint:") || strings.Contains(msg, "On branch") {
				t.Errorf("message %q quotes raw git output or a sandbox path", msg)
			}
		})
	}
}

func TestIsIndexLocked(t *testing.T) {
	if !IsIndexLocked([]byte("fatal: Unable to create '/x/git/w/index.lock': File exists.\n")) {
		t.Error("index.lock refusal not recognised")
	}
	if IsIndexLocked([]byte("fatal: Unable to create '/x/git/w/refs/heads/a.lock': File exists.\n")) {
		t.Error("a ref lock taken for index.lock")
	}
}
