package e2b_test

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/gitgate/gitgate/backends/sandbox"
	"github.com/gitgate/gitgate/backends/sandbox/local"
	"github.com/gitgate/gitgate/internal/e2bfake"
)

// aroundWorld is one provider with a sandbox, and where its files are on
// this machine.
type aroundWorld struct {
	name string
	p    sandbox.Provider
	info sandbox.Info
	// host maps a sandbox path to this machine's.
	host func(string) string
}

// aroundWorlds returns an E2B sandbox (on the local E2B) and a local one.
func aroundWorlds(t *testing.T) []aroundWorld {
	s := fake(t, e2bfake.Config{})
	ep := newProvider(t, s)
	lp, err := local.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	var out []aroundWorld
	for _, w := range []aroundWorld{{name: "e2b", p: ep}, {name: "local", p: lp}} {
		info, err := w.p.Create(t.Context(), sandbox.CreateOptions{Owner: sandbox.Owner{Project: "around"}, TTL: time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		w.info = info
		if w.name == "e2b" {
			w.host = func(p string) string { return filepath.Join(s.Root(), info.ID, p[len("/home/user"):]) }
		} else {
			w.host = func(p string) string { return p }
		}
		out = append(out, w)
	}
	return out
}

// TestAroundSameOnBothProviders: the file operations around a command
// (sandbox.Around) do the same on E2B, in the command's one round trip,
// as on the local provider: removals and the mark before it, HEAD and the
// packed ref it names, files and a listing after it (a missing file
// absent), the program's own output untouched by what travels back.
func TestAroundSameOnBothProviders(t *testing.T) {
	t.Parallel()
	var got []sandbox.AroundResult
	for _, w := range aroundWorlds(t) {
		root := w.info.Root
		gitDir := root + "/git/w.git"
		for file, data := range map[string]string{
			gitDir + "/HEAD":        "ref: refs/heads/main\n",
			gitDir + "/packed-refs": "# pack-refs with: peeled\n1111111111111111111111111111111111111111 refs/heads/main\n",
			gitDir + "/config":      "[core]\n",
			root + "/ws/w/left.txt": "left over\n",
		} {
			if err := os.MkdirAll(filepath.Dir(w.host(file)), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(w.host(file), []byte(data), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		if err := os.Mkdir(w.host(gitDir+"/refs"), 0o755); err != nil {
			t.Fatal(err)
		}
		a := sandbox.Around{Remove: []string{root + "/ws/w"}, Create: []string{root + "/git/w.cloning"},
			Disk: []sandbox.DiskLimit{{Path: root}, {Path: gitDir, Max: 1 << 30, CapsFiles: true}},
			Head: gitDir, Read: []string{gitDir + "/missing", gitDir + "/config"}, List: gitDir}
		res, err := w.p.Exec(t.Context(), w.info.ID, sandbox.ExecRequest{Path: "/bin/sh",
			Args: []string{"-c", `[ -e "$1" ] && echo "not removed"; [ -f "$2" ] || echo "no mark"; echo out; printf 'err' >&2; exit 3`, "sh", root + "/ws/w", root + "/git/w.cloning"},
			Env:  []string{"PATH=/usr/bin:/bin"}, Timeout: time.Minute, Around: a})
		if err != nil {
			t.Fatalf("%s: %v", w.name, err)
		}
		if res.ExitCode != 3 || string(res.Stdout) != "out\n" || string(res.Stderr) != "err" {
			t.Fatalf("%s: exit %d, stdout %q, stderr %q; want 3, the program's own output", w.name, res.ExitCode, res.Stdout, res.Stderr)
		}
		r := res.Around
		if !r.After || r.Refused || r.Stopped || len(r.DiskBefore) != 2 || len(r.DiskAfter) != 2 || r.DiskBefore[1] <= 0 {
			t.Fatalf("%s: around %+v", w.name, r)
		}
		r.DiskBefore, r.DiskAfter = nil, nil // sizes differ between file systems
		got = append(got, r)
	}
	if !slices.Equal(got[0].Names, []string{"HEAD", "config", "packed-refs", "refs"}) {
		t.Fatalf("e2b listed %q", got[0].Names)
	}
	for i, r := range got {
		if len(r.Files) != 3 || string(r.Files[sandboxGitDir(r)+"/HEAD"]) != "ref: refs/heads/main\n" ||
			string(r.Files[sandboxGitDir(r)+"/config"]) != "[core]\n" || len(r.Files[sandboxGitDir(r)+"/packed-refs"]) == 0 {
			t.Fatalf("provider %d read %q", i, r.Files)
		}
	}
	if !slices.Equal(got[0].Names, got[1].Names) || len(got[0].Files) != len(got[1].Files) {
		t.Fatalf("the providers differ:\ne2b   %+v\nlocal %+v", got[0], got[1])
	}
}

// sandboxGitDir is the git directory TestAroundSameOnBothProviders read
// (the one whose HEAD it holds).
func sandboxGitDir(r sandbox.AroundResult) string {
	for file := range r.Files {
		if filepath.Base(file) == "HEAD" {
			return filepath.Dir(file)
		}
	}
	return ""
}

// TestAroundLimitsAndGuard: on both providers a path at its limit refuses
// the command before it runs, the room left under a limit caps the files
// it writes (SIGXFSZ ends it), and a guard that holds stops everything.
func TestAroundLimitsAndGuard(t *testing.T) {
	t.Parallel()
	for _, w := range aroundWorlds(t) {
		root := w.info.Root
		touch := `: >"$1"/ran`
		run := func(a sandbox.Around, script string) sandbox.ExecResult {
			t.Helper()
			res, err := w.p.Exec(t.Context(), w.info.ID, sandbox.ExecRequest{Path: "/bin/sh", Args: []string{"-c", script, "sh", root + "/ws"},
				Env: []string{"PATH=/usr/bin:/bin"}, Timeout: time.Minute, Around: a})
			if err != nil {
				t.Fatalf("%s: %v", w.name, err)
			}
			return res
		}
		ran := func() bool {
			_, err := os.Stat(w.host(root + "/ws/ran"))
			_ = os.Remove(w.host(root + "/ws/ran"))
			return err == nil
		}
		if res := run(sandbox.Around{Disk: []sandbox.DiskLimit{{Path: root + "/home", Max: 1}}}, touch); !res.Around.Refused || ran() {
			t.Fatalf("%s: a path at its limit: %+v, and the program ran: want it refused", w.name, res.Around)
		}
		res := run(sandbox.Around{Disk: []sandbox.DiskLimit{{Path: root, Max: 1 << 40, CapsFiles: true}}}, touch)
		if res.Around.Refused || !ran() || res.ExitCode != 0 {
			t.Fatalf("%s: within the limit: %+v, exit %d", w.name, res.Around, res.ExitCode)
		}
		used := res.Around.DiskBefore[0]
		big := run(sandbox.Around{Disk: []sandbox.DiskLimit{{Path: root, Max: used + 64<<10, CapsFiles: true}}},
			`exec head -c 1048576 /dev/zero >"$1"/big`)
		if big.ExitCode != -1 {
			t.Fatalf("%s: writing past the room left: exit %d; want it killed by SIGXFSZ", w.name, big.ExitCode)
		}
		head, mark := root+"/git/g.git/HEAD", root+"/git/g.cloning"
		for _, f := range []string{head, mark} {
			if err := os.MkdirAll(filepath.Dir(w.host(f)), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(w.host(f), nil, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		guard := sandbox.Around{Guard: sandbox.Guard{If: head, Unless: mark}, Remove: []string{root + "/git/g.git"}}
		if res := run(guard, touch); res.Around.Stopped || !ran() {
			t.Fatalf("%s: a guard whose Unless exists stopped the command: %+v", w.name, res.Around)
		}
		if err := os.MkdirAll(filepath.Dir(w.host(head)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(w.host(head), nil, 0o644); err != nil {
			t.Fatal(err)
		}
		_ = os.Remove(w.host(mark))
		if res := run(guard, touch); !res.Around.Stopped || ran() {
			t.Fatalf("%s: the guard held, yet %+v and the program ran=%v", w.name, res.Around, !res.Around.Stopped)
		}
		if _, err := os.Stat(w.host(head)); err != nil {
			t.Fatalf("%s: a stopped command's removals were done: %v", w.name, err)
		}
	}
}
