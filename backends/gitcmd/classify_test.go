package gitcmd

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/gitgate/gitgate/backends"
)

func TestClassifyCategory(t *testing.T) {
	const access = "fatal: unable to access 'https://github.com/o/r.git/': "
	tests := []struct {
		name, stderr string
		want         backends.Category
		bug          string
	}{
		{"authentication failed", "remote: Invalid username or password.\nfatal: Authentication failed for 'https://github.com/o/r.git/'\n", backends.Unauthenticated, ""},
		{"no credentials, prompts disabled", "fatal: could not read Username for 'https://github.com': terminal prompts disabled\n", backends.Unauthenticated, ""},
		{"401", access + "The requested URL returned error: 401\n", backends.Unauthenticated, ""},
		{"repository not found", "remote: Repository not found.\nfatal: repository 'https://github.com/o/r.git/' not found\n", backends.NotFound, ""},
		{"403", access + "The requested URL returned error: 403\n", backends.Forbidden, ""},
		{"permission denied 403", "remote: Permission to o/r.git denied to bot.\n" + access + "The requested URL returned error: 403\n", backends.Forbidden, ""},
		{"transport not allowed", "fatal: transport 'file' not allowed\n", backends.Forbidden, ""},
		{"429", access + "The requested URL returned error: 429\n", backends.RateLimited, ""},
		{"could not resolve host", access + "Could not resolve host: github.com\n", backends.Unavailable, ""},
		{"connection refused", access + "Failed to connect to github.com port 443 after 2 ms: Connection refused\n", backends.Unavailable, ""},
		{"502", access + "The requested URL returned error: 502\n", backends.Unavailable, ""},
		{"hung up", "error: RPC failed; curl 18 transfer closed\nfatal: the remote end hung up unexpectedly\n", backends.Unavailable, ""},
		{"push rejected (non-porcelain)", "To https://github.com/o/r.git\n ! [rejected]        main -> main (non-fast-forward)\n" +
			"error: failed to push some refs to 'https://github.com/o/r.git'\nhint: Updates were rejected because the tip of your current branch is behind\n", backends.Conflict, ""},
		{"push rejected (porcelain stderr)", "error: failed to push some refs to 'https://github.com/o/r.git'\n" +
			"hint: Updates were rejected because the remote contains work that you do\nhint: not have locally.\n", backends.Conflict, ""},
		{"nothing to commit", "On branch main\nnothing to commit, working tree clean\n", backends.Conflict, ""},
		{"merge conflict", "CONFLICT (content): Merge conflict in a.txt\nAutomatic merge failed; fix conflicts and then commit the result.\n", backends.Conflict, ""},
		{"not possible to fast-forward", "fatal: Not possible to fast-forward, aborting.\n", backends.Conflict, ""},
		{"branch exists", "fatal: a branch named 'x' already exists\n", backends.Conflict, ""},
		{"pathspec", "error: pathspec 'x' did not match any file(s) known to git\n", backends.NotFound, ""},
		{"unknown revision", "fatal: ambiguous argument 'nope': unknown revision or path not in the working tree.\n", backends.NotFound, ""},
		{"remote ref", "fatal: couldn't find remote ref refs/heads/nope\n", backends.NotFound, ""},
		{"disk full", "error: unable to create temporary file: No space left on device\nfatal: failed to write object\n", backends.ResourceExhausted, ""},
		{"unknown", "fatal: something entirely new went wrong\n", backends.Internal, ""},
		{"empty", "", backends.Internal, ""},
		{"protected branch", "remote: error: GH006: Protected branch update failed for refs/heads/main.\n" +
			"remote: error: Changes must be made through a pull request.\nerror: failed to push some refs to 'https://github.com/o/r.git'\n",
			backends.Forbidden, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.bug != "" {
				t.Skip("known bug, reported: " + tt.bug)
			}
			if got, msg := Classify([]byte(tt.stderr)); got != tt.want {
				t.Errorf("Classify(%q) = %q (%s), want %q", tt.stderr, got, msg, tt.want)
			}
		})
	}
}

func TestClassifyMessage(t *testing.T) {
	root := "/var/lib/gitgate/sb/7f3a"
	strip := []string{root + "/ws/", root + "/git/", root}
	tests := []struct {
		name, stderr string
		strip        []string
		want         string
	}{
		{"progress dropped",
			"Cloning into '" + root + "/ws'...\nremote: Enumerating objects: 5, done.\nremote: Counting objects: 100% (5/5), done.\r" +
				"remote: Counting objects:  50% (1/2)\rReceiving objects:  50% (1/2)\rReceiving objects: 100% (2/2), done.\n" +
				"Resolving deltas: 100% (1/1), done.\nfatal: Authentication failed for 'https://github.com/o/r.git/'\n",
			strip, "fatal: Authentication failed for 'https://github.com/o/r.git/'"},
		{"push progress dropped",
			"Enumerating objects: 3, done.\nCounting objects: 100% (3/3), done.\nWriting objects: 100% (3/3), 240 bytes | 240.00 KiB/s, done.\n" +
				"Total 3 (delta 0), reused 0 (delta 0), pack-reused 0\nTo https://github.com/o/r.git\n ! [rejected]        main -> main (fetch first)\n" +
				"error: failed to push some refs to 'https://github.com/o/r.git'\n",
			nil, "! [rejected]        main -> main (fetch first); error: failed to push some refs to 'https://github.com/o/r.git'"},
		{"sandbox paths stripped",
			"fatal: '" + root + "/ws/../x' is outside repository at '" + root + "/ws'\nfatal: " + root + "/git/index.lock: File exists.\n",
			strip, "fatal: '../x' is outside repository at '/ws'; fatal: index.lock: File exists."},
		{"empty strip ignored", "error: a\n\n  fatal: b  \n", []string{""}, "error: a; fatal: b"},
		{"no message", "Receiving objects: 100% (2/2), done.\n", nil, "git failed without a message"},
		{"capped", "fatal: " + strings.Repeat("x", 4000), nil, "fatal: " + strings.Repeat("x", 1024-len("fatal: ")) + "…"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, msg := Classify([]byte(tt.stderr), tt.strip...)
			if msg != tt.want {
				t.Errorf("message = %q\nwant      %q", msg, tt.want)
			}
			if strings.Contains(msg, root) {
				t.Errorf("message contains the sandbox root: %q", msg)
			}
		})
	}
}

func TestClassifyMessageIsValidUTF8WhenCapped(t *testing.T) {
	_, msg := Classify([]byte("fatal: " + strings.Repeat("é", 1000)))
	if !utf8.ValidString(msg) || len(msg) > 1024+len("…") {
		t.Errorf("capped message is %d bytes, valid UTF-8 %v", len(msg), utf8.ValidString(msg))
	}
}

func TestClassifyMessageNeverContainsStrip(t *testing.T) {
	root := "/sb/abc"
	_, msg := Classify([]byte("fatal: pathspec '/sb/"+root+"abc' did not match any files"), root)
	if strings.Contains(msg, root) {
		t.Errorf("message %q contains the stripped root %q", msg, root)
	}
}
