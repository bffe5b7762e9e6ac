package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/gitgate/gitgate/backends"
	"github.com/gitgate/gitgate/flags"
)

// failed is the result of a command that printed nothing and failed with
// msg.
func failed(msg string) cliResult {
	return cliResult{Stderr: "gitgate: " + msg + "\n", Code: 1}
}

// printed is the result of a command that succeeded printing stdout.
func printed(stdout string) cliResult {
	return cliResult{Stdout: stdout}
}

// newFlagFile writes a flag file with every operation at 0% in a
// temporary directory and returns its path.
func newFlagFile(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "flags.flagd.json")
	if err := flags.NewFile(backends.OpNames()).Save(path); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestHelp: a bare gitgate, and --help of the root command, of each
// command group, of kill and of canary set, print the help on stdout and
// succeed.
func TestHelp(t *testing.T) {
	cases := []struct {
		args []string
		want string
	}{
		{nil, rootHelp},
		{[]string{"--help"}, rootHelp},
		{[]string{"canary", "--help"}, canaryHelp},
		{[]string{"flags", "--help"}, flagsHelp},
		{[]string{"kill", "--help"}, killHelp},
		{[]string{"canary", "set", "--help"}, canarySetHelp},
	}
	for _, c := range cases {
		wantCLI(t, runGitgate(t, "", c.args...), printed(c.want))
	}
}

const rootHelp = `One git endpoint for AI agents in sandboxes

Usage:
  gitgate [command]

Available Commands:
  backend     Run the Approach 2 service (gRPC GitService)
  branches    Agents' branches: list them, clean up merged and stale ones, restore a deleted one
  budget      Month-to-date sandbox spend against the budgets, with the forecast
  canary      Move operations between Approach 1 and Approach 2
  completion  Generate the autocompletion script for the specified shell
  dev         Run the gateway with a local demo git remote and a development agent token
  drill       Run the weekly kill-switch drill on the gateways, measured, and put everything back
  flags       Inspect the canary flags
  hash-token  Print the token_sha256 of an agent token (a new random token when none is given)
  help        Help about any command
  kill        Engage or release the kill switch: every operation to Approach 1
  report      The canary comparison and the stay-or-migrate decision, from the ledger
  serve       Run the gateway (MCP over Streamable HTTP, or over stdio with --stdio)
  version     Print the version

Flags:
      --config string   configuration file (default: the embedded configs/gitgate.yaml; GITGATE_* variables override keys)
  -h, --help            help for gitgate

Use "gitgate [command] --help" for more information about a command.
`

const canaryHelp = `Move operations between Approach 1 and Approach 2

Usage:
  gitgate canary [flags]
  gitgate canary [command]

Available Commands:
  advance     Move OP to the next stage (0 → 10 → 50 → 100 %) if the judge says its current stage may advance
  rollback    Send OP (or every operation) back to Approach 1 and stop its shadow traffic (shadow 0%)
  set         Send PERCENT of OP's workspaces to Approach 2 (stages: 0, 10, 50, 100)
  shadow      Shadow PERCENT of OP's calls on the other backend (reads mirrored, writes predicted) and compare

Flags:
  -h, --help   help for canary

Global Flags:
      --config string   configuration file (default: the embedded configs/gitgate.yaml; GITGATE_* variables override keys)

Use "gitgate canary [command] --help" for more information about a command.
`

const flagsHelp = `Inspect the canary flags

Usage:
  gitgate flags [flags]
  gitgate flags [command]

Available Commands:
  serve       Serve the flag file to gateways as a flagd sync source (their flags.sync_addr)
  show        Show per operation the share on Approach 2, the shadow rate and the kill switch

Flags:
  -h, --help   help for flags

Global Flags:
      --config string   configuration file (default: the embedded configs/gitgate.yaml; GITGATE_* variables override keys)

Use "gitgate flags [command] --help" for more information about a command.
`

const killHelp = `kill sets the kill switch in the flag file (running gateways apply it within a
second). With --admin it also sets (on) or clears (off) the local override on
those gateways' admin listeners, which works even when the flag file is
missing or broken, and prints the kill switch each gateway then applies.
Changing the override needs the gateway's admin token (listen.admin_token_sha256),
read from the variable --admin-token-env names. kill off without --admin
fails when a kill-switch override is still on beside the flag file (the
override file gateways keep): calls stay on approach1 until it is cleared.

Usage:
  gitgate kill on|off [flags]

Examples:
  gitgate kill on --reason "approach2 errors" --admin http://127.0.0.1:7421

Flags:
      --admin strings            admin listener URLs of running gateways to set the override on
      --admin-token-env string   environment variable holding the admin token, sent when set (default "GITGATE_ADMIN_TOKEN")
      --by string                who makes the change (default: $USER)
      --file string              flag file (default: flags.path of the configuration)
  -h, --help                     help for kill
      --reason string            why (recorded with the change)

Global Flags:
      --config string   configuration file (default: the embedded configs/gitgate.yaml; GITGATE_* variables override keys)
`

const canarySetHelp = `Send PERCENT of OP's workspaces to Approach 2 (stages: 0, 10, 50, 100)

Usage:
  gitgate canary set OP PERCENT [flags]

Examples:
  gitgate canary set status 10 --reason "start the canary"

Flags:
      --by string       who makes the change (default: $USER)
      --file string     flag file (default: flags.path of the configuration)
  -h, --help            help for set
      --reason string   why (recorded with the change)

Global Flags:
      --config string   configuration file (default: the embedded configs/gitgate.yaml; GITGATE_* variables override keys)
`

// TestVersion: version prints the version, the commit when the build
// recorded one, and the Go version; it takes no argument.
func TestVersion(t *testing.T) {
	wantCLI(t, runGitgate(t, "", "version"), printed("gitgate dev ("+revision()+runtime.Version()+")\n"))
	wantCLI(t, runGitgate(t, "", "version", "extra"), failed(`unknown command "extra" for "gitgate version"`))
}

// TestHashToken: hash-token prints the token_sha256 of the token given.
func TestHashToken(t *testing.T) {
	wantCLI(t, runGitgate(t, "", "hash-token", "abc"),
		printed("token_sha256: ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad\n"))
	wantCLI(t, runGitgate(t, "", "hash-token", "a", "b"), failed("accepts at most 1 arg(s), received 2"))
}

// TestUnknownSubcommandFails: a command group given an unknown or no
// subcommand fails, naming it and listing the commands, instead of
// printing help and succeeding.
func TestUnknownSubcommandFails(t *testing.T) {
	cases := []struct {
		args []string
		want cliResult
	}{
		{[]string{"canary", "bogus"}, failed(`unknown command "bogus" for "gitgate canary"; the commands are advance, rollback, set, shadow`)},
		{[]string{"canary", "sett", "status", "10"}, failed(`unknown command "sett" for "gitgate canary" (did you mean set?); the commands are advance, rollback, set, shadow`)},
		{[]string{"flags", "shwo"}, failed(`unknown command "shwo" for "gitgate flags" (did you mean show?); the commands are serve, show`)},
		{[]string{"canary"}, failed(`"gitgate canary" needs a command: advance, rollback, set, shadow (see gitgate canary --help)`)},
		{[]string{"nonsense"}, failed(`unknown command "nonsense" for "gitgate"`)},
	}
	for _, c := range cases {
		wantCLI(t, runGitgate(t, "", c.args...), c.want)
	}
}

// TestCanaryArgumentsAreChecked: canary set takes a stage, canary shadow a
// percentage, and an unknown operation is refused with the list of
// operations; a refused command changes neither the flags nor the change
// log.
func TestCanaryArgumentsAreChecked(t *testing.T) {
	path := newFlagFile(t)
	before, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	ops := strings.Join(backends.OpNames(), ", ")
	cases := []struct {
		args []string
		want cliResult
	}{
		{[]string{"canary", "set", "status", "25"}, failed(`PERCENT "25" is not a canary stage; the stages are 0, 10, 50, 100`)},
		{[]string{"canary", "set", "status", "150"}, failed(`PERCENT "150" is not a canary stage; the stages are 0, 10, 50, 100`)},
		{[]string{"canary", "set", "status", "ten"}, failed(`PERCENT "ten" is not a canary stage; the stages are 0, 10, 50, 100`)},
		{[]string{"canary", "set", "stauts", "10"}, failed(`unknown operation "stauts"; the operations are ` + ops)},
		{[]string{"canary", "set", "status"}, failed("accepts 2 arg(s), received 1")},
		{[]string{"canary", "shadow", "status", "101"}, failed(`PERCENT "101" must be a whole number from 0 to 100`)},
		{[]string{"canary", "shadow", "status", "5.5"}, failed(`PERCENT "5.5" must be a whole number from 0 to 100`)},
		{[]string{"canary", "shadow", "nope", "5"}, failed(`unknown operation "nope"; the operations are ` + ops)},
		{[]string{"canary", "rollback", "nope"}, failed(`unknown operation "nope"; the operations are ` + ops)},
		{[]string{"canary", "advance", "nope"}, failed(`unknown operation "nope"; the operations are ` + ops)},
	}
	for _, c := range cases {
		wantCLI(t, runGitgate(t, "", append(c.args, "--file", path, "--reason", "test")...), c.want)
	}
	// Without --reason nothing is changed either.
	wantCLI(t, runGitgate(t, "", "canary", "set", "status", "10", "--file", path), failed(`required flag(s) "reason" not set`))
	after, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(before, after) {
		t.Error("a refused command changed the flag file")
	}
	if log, err := os.ReadFile(path + ".changes.jsonl"); err == nil && len(log) > 0 {
		t.Errorf("a refused command was recorded: %s", log)
	}
	t.Setenv("USER", "tester") // who makes a change without --by
	for _, stage := range []string{"10", "50%", "100", "0"} {
		wantCLI(t, runGitgate(t, "", "canary", "set", "status", stage, "--file", path, "--reason", "stage"),
			printed("status: "+strings.TrimSuffix(stage, "%")+"% to approach2 (by tester: stage)\n"))
	}
}

// TestCanaryShadowAndRollback: shadow and rollback print the change they
// recorded, and flags show prints the shares they leave.
func TestCanaryShadowAndRollback(t *testing.T) {
	path := newFlagFile(t)
	by := []string{"--file", path, "--by", "ana", "--reason", "test"}
	wantCLI(t, runGitgate(t, "", append([]string{"canary", "set", "push", "50"}, by...)...), printed("push: 50% to approach2 (by ana: test)\n"))
	wantCLI(t, runGitgate(t, "", append([]string{"canary", "set", "status", "100"}, by...)...), printed("status: 100% to approach2 (by ana: test)\n"))
	wantCLI(t, runGitgate(t, "", append([]string{"canary", "shadow", "status", "5%"}, by...)...), printed("status: shadow 5% (by ana: test)\n"))
	wantCLI(t, runGitgate(t, "", append([]string{"canary", "shadow", "clone", "100"}, by...)...), printed("clone: shadow 100% (by ana: test)\n"))
	wantCLI(t, runGitgate(t, "", "flags", "show", "--file", path), printed(`kill switch: off

OPERATION          APPROACH2  SHADOW
clone              0%         100%
pull               0%         0%
push               50%        0%
status             100%       5%
diff               0%         0%
log                0%         0%
branches           0%         0%
checkout           0%         0%
commit             0%         0%
read_file          0%         0%
write_file         0%         0%
list_files         0%         0%
delete_file        0%         0%
delete_branch      0%         0%
list_workspaces    0%         0%
release_workspace  0%         0%
fetch              0%         0%
show               0%         0%
blame              0%         0%
tags               0%         0%
reflog             0%         0%
stashes            0%         0%
merge              0%         0%
rebase             0%         0%
cherry_pick        0%         0%
revert             0%         0%
reset              0%         0%
restore            0%         0%
stash              0%         0%
tag                0%         0%
mark_resolved      0%         0%
continue           0%         0%
abort              0%         0%
fork_workspace     0%         0%
`))
	wantCLI(t, runGitgate(t, "", append([]string{"canary", "rollback", "status"}, by...)...), printed("status: rolled back to approach1, shadow 0% (by ana: test)\n"))
	wantCLI(t, runGitgate(t, "", "flags", "show", "--file", path), printed(`kill switch: off

OPERATION          APPROACH2  SHADOW
clone              0%         100%
pull               0%         0%
push               50%        0%
status             0%         0%
diff               0%         0%
log                0%         0%
branches           0%         0%
checkout           0%         0%
commit             0%         0%
read_file          0%         0%
write_file         0%         0%
list_files         0%         0%
delete_file        0%         0%
delete_branch      0%         0%
list_workspaces    0%         0%
release_workspace  0%         0%
fetch              0%         0%
show               0%         0%
blame              0%         0%
tags               0%         0%
reflog             0%         0%
stashes            0%         0%
merge              0%         0%
rebase             0%         0%
cherry_pick        0%         0%
revert             0%         0%
reset              0%         0%
restore            0%         0%
stash              0%         0%
tag                0%         0%
mark_resolved      0%         0%
continue           0%         0%
abort              0%         0%
fork_workspace     0%         0%
`))
	wantCLI(t, runGitgate(t, "", append([]string{"canary", "rollback", "all"}, by...)...), printed("all: rolled back to approach1, shadow 0% (by ana: test)\n"))
	wantCLI(t, runGitgate(t, "", "flags", "show", "--file", path), printed("kill switch: off\n\n"+noShares))
}

// TestFlagsShow: flags show prints the file's kill switch and shares, and
// notes a kill-switch override kept beside it; a missing file is an error.
func TestFlagsShow(t *testing.T) {
	path := newFlagFile(t)
	wantCLI(t, runGitgate(t, "", "flags", "show", "--file", path), printed("kill switch: off\n\n"+noShares))
	wantCLI(t, runGitgate(t, "", "flags", "show", "--file", path+".missing"), failed("open $DIR/flags.flagd.json.missing: no such file or directory"))
	wantCLI(t, runGitgate(t, "", "flags", "show", "extra", "--file", path), failed(`unknown command "extra" for "gitgate flags show"`))
	writeOverride(t, path, flags.Override{Kill: true, By: "oncall", Reason: "drill"})
	wantCLI(t, runGitgate(t, "", "flags", "show", "--file", path), printed("kill switch: off\n\n"+noShares+`
NOTE: a kill-switch override is ON in $DIR/flags.flagd.json.override.json (set by oncall at $TIME: drill): a gateway using it sends every call to approach1 whatever this file says; see `+"`gitgate flags show --admin URL`, clear it with `gitgate kill off --admin URL`"+`
`))
}

// noShares is flags show's table of a flag file with every operation at 0%
// and no shadow traffic.
const noShares = `OPERATION          APPROACH2  SHADOW
clone              0%         0%
pull               0%         0%
push               0%         0%
status             0%         0%
diff               0%         0%
log                0%         0%
branches           0%         0%
checkout           0%         0%
commit             0%         0%
read_file          0%         0%
write_file         0%         0%
list_files         0%         0%
delete_file        0%         0%
delete_branch      0%         0%
list_workspaces    0%         0%
release_workspace  0%         0%
fetch              0%         0%
show               0%         0%
blame              0%         0%
tags               0%         0%
reflog             0%         0%
stashes            0%         0%
merge              0%         0%
rebase             0%         0%
cherry_pick        0%         0%
revert             0%         0%
reset              0%         0%
restore            0%         0%
stash              0%         0%
tag                0%         0%
mark_resolved      0%         0%
continue           0%         0%
abort              0%         0%
fork_workspace     0%         0%
`

// writeOverride writes ov as the kill-switch override gateways keep beside
// the flag file at flagPath.
func writeOverride(t *testing.T, flagPath string, ov flags.Override) {
	t.Helper()
	ov.At = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	data, err := json.Marshal(ov)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(flags.OverridePath(flagPath), data, 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestKillCommands: kill on and off set the file's kill switch and say so;
// anything but on or off, or no --reason, is refused; kill off fails while
// a kill-switch override is still on beside the file.
func TestKillCommands(t *testing.T) {
	path := newFlagFile(t)
	by := []string{"--file", path, "--by", "oncall", "--reason", "drill"}
	wantCLI(t, runGitgate(t, "", append([]string{"kill", "on"}, by...)...), printed("kill switch on (by oncall: drill)\n"))
	wantCLI(t, runGitgate(t, "", "flags", "show", "--file", path), printed("kill switch: ON (everything on approach1)\n\n"+noShares))
	wantCLI(t, runGitgate(t, "", append([]string{"kill", "off"}, by...)...), printed("kill switch off (by oncall: drill)\n"))
	wantCLI(t, runGitgate(t, "", append([]string{"kill", "maybe"}, by...)...), failed(`kill takes on or off, not "maybe"`))
	wantCLI(t, runGitgate(t, "", append([]string{"kill"}, by...)...), failed("accepts 1 arg(s), received 0"))
	wantCLI(t, runGitgate(t, "", "kill", "on", "--file", path), failed(`required flag(s) "reason" not set`))
	writeOverride(t, path, flags.Override{Kill: true, By: "oncall", Reason: "flags broken"})
	wantCLI(t, runGitgate(t, "", append([]string{"kill", "off"}, by...)...), cliResult{Stdout: "kill switch off (by oncall: drill)\n", Stderr: "gitgate: the kill switch is off in the flag file, but a kill-switch override is ON in $DIR/flags.flagd.json.override.json (set by oncall at $TIME: flags broken): " +
		"gateways using it keep every call on approach1; clear it with `gitgate kill off --admin URL`\n", Code: 1})
}

// cliResult is what one run of gitgate's command line printed on stdout
// and stderr, and its exit code.
type cliResult struct {
	Stdout, Stderr string
	Code           int

	args []string // the command line, for messages; not compared
}

var (
	// tempDirs matches a directory made by t.TempDir (of any test).
	tempDirs = regexp.MustCompile(regexp.QuoteMeta(os.TempDir()) + `/[^/\s]+/\d{3,}`)
	// timestamps matches an RFC 3339 time.
	timestamps = regexp.MustCompile(`\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)`)
)

// runGitgate runs gitgate's command line in process the way main does
// (run), with stdin as its standard input. In what it printed, every
// directory made by t.TempDir reads $DIR and every RFC 3339 time $TIME, so
// that whole outputs can be compared (wantCLI).
func runGitgate(t *testing.T, stdin string, args ...string) cliResult {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := execute(t.Context(), args, strings.NewReader(stdin), &stdout, &stderr)
	norm := func(s string) string {
		return timestamps.ReplaceAllString(tempDirs.ReplaceAllString(s, "$$DIR"), "$$TIME")
	}
	return cliResult{Stdout: norm(stdout.String()), Stderr: norm(stderr.String()), Code: code, args: args}
}

// runCLI runs gitgate's command line as runGitgate does, for tests that
// look for text in what it printed rather than compare it whole: it returns
// stdout then stderr, unchanged, and an error holding stderr when the exit
// code is not 0.
func runCLI(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	if code := execute(t.Context(), args, strings.NewReader(""), &stdout, &stderr); code != 0 {
		return stdout.String() + stderr.String(), fmt.Errorf("exit code %d: %s", code, strings.TrimSpace(stderr.String()))
	}
	return stdout.String() + stderr.String(), nil
}

// run is runCLI under the name some end-to-end tests call it by.
func run(t *testing.T, args ...string) (string, error) {
	t.Helper()
	return runCLI(t, args...)
}

// wantCLI fails the test unless got has exactly want's stdout, stderr and
// exit code, showing a line diff of each output that differs.
func wantCLI(t *testing.T, got, want cliResult) {
	t.Helper()
	var msg strings.Builder
	if got.Code != want.Code {
		fmt.Fprintf(&msg, "exit code %d, want %d\n", got.Code, want.Code)
	}
	for _, o := range []struct{ name, got, want string }{{"stdout", got.Stdout, want.Stdout}, {"stderr", got.Stderr, want.Stderr}} {
		if o.got != o.want {
			fmt.Fprintf(&msg, "%s (- want, + got):\n%s", o.name, lineDiff(o.want, o.got))
		}
	}
	if msg.Len() > 0 {
		t.Errorf("gitgate %s:\n%s", strings.Join(got.args, " "), msg.String())
	}
}

// lineDiff returns the lines of want and got, each marked "-" (only in
// want), "+" (only in got) or " " (in both), from a longest common
// subsequence of the two. A missing final newline shows as "⏎ missing".
func lineDiff(want, got string) string {
	split := func(s string) []string {
		lines := strings.SplitAfter(s, "\n")
		if lines[len(lines)-1] == "" {
			return lines[:len(lines)-1]
		}
		lines[len(lines)-1] += "⏎ missing\n"
		return lines
	}
	a, b := split(want), split(got)
	// lcs[i][j] is the length of a longest common subsequence of a[i:] and b[j:].
	lcs := make([][]int, len(a)+1)
	for i := range lcs {
		lcs[i] = make([]int, len(b)+1)
	}
	for i := len(a) - 1; i >= 0; i-- {
		for j := len(b) - 1; j >= 0; j-- {
			if a[i] == b[j] {
				lcs[i][j] = lcs[i+1][j+1] + 1
			} else {
				lcs[i][j] = max(lcs[i+1][j], lcs[i][j+1])
			}
		}
	}
	var d strings.Builder
	i, j := 0, 0
	for i < len(a) || j < len(b) {
		switch {
		case i < len(a) && j < len(b) && a[i] == b[j]:
			d.WriteString("  " + a[i])
			i, j = i+1, j+1
		case i < len(a) && (j == len(b) || lcs[i+1][j] >= lcs[i][j+1]):
			d.WriteString("- " + a[i])
			i++
		default:
			d.WriteString("+ " + b[j])
			j++
		}
	}
	return d.String()
}

// TestLineDiff: lineDiff marks the lines only in want, only in got, and
// in both, and a missing final newline.
func TestLineDiff(t *testing.T) {
	got := lineDiff("a\nb\nc\n", "a\nB\nc\nd")
	want := "  a\n- b\n+ B\n  c\n+ d⏎ missing\n"
	if got != want {
		t.Errorf("lineDiff:\n%s\nwant:\n%s", got, want)
	}
}
