package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gitgate/gitgate/flags"
)

// TestUnknownSubcommandFails: a command group given an unknown or no
// subcommand fails, naming it and listing the commands, instead of
// printing help and succeeding.
func TestUnknownSubcommandFails(t *testing.T) {
	cases := []struct {
		args []string
		want []string
	}{
		{[]string{"canary", "bogus"}, []string{`unknown command "bogus" for "gitgate canary"`, "set", "rollback", "advance", "shadow"}},
		{[]string{"canary", "sett", "status", "10"}, []string{`unknown command "sett"`, "did you mean set?"}},
		{[]string{"flags", "shwo"}, []string{`unknown command "shwo" for "gitgate flags"`, "show"}},
		{[]string{"canary"}, []string{`"gitgate canary" needs a command`, "set"}},
		{[]string{"nonsense"}, []string{`unknown command "nonsense"`}},
	}
	for _, c := range cases {
		out, err := runCLI(t, c.args...)
		if err == nil {
			t.Errorf("gitgate %s succeeded:\n%s", strings.Join(c.args, " "), out)
			continue
		}
		for _, w := range c.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("gitgate %s: %v, want it to say %q", strings.Join(c.args, " "), err, w)
			}
		}
	}
}

// TestCanaryArgumentsAreChecked: canary set takes a stage, canary shadow a
// percentage, and an unknown operation is refused with the list of
// operations; a refused command changes neither the flags nor the change
// log.
func TestCanaryArgumentsAreChecked(t *testing.T) {
	path := filepath.Join(t.TempDir(), "flags.flagd.json")
	if err := flags.NewFile(opNames()).Save(path); err != nil {
		t.Fatal(err)
	}
	before, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"canary", "set", "status", "25"}, `PERCENT "25" is not a canary stage; the stages are 0, 10, 50, 100`},
		{[]string{"canary", "set", "status", "150"}, "the stages are 0, 10, 50, 100"},
		{[]string{"canary", "set", "status", "ten"}, "the stages are 0, 10, 50, 100"},
		{[]string{"canary", "set", "stauts", "10"}, `unknown operation "stauts"; the operations are ` + strings.Join(opNames(), ", ")},
		{[]string{"canary", "shadow", "status", "101"}, `PERCENT "101" must be a whole number from 0 to 100`},
		{[]string{"canary", "shadow", "status", "5.5"}, "from 0 to 100"},
		{[]string{"canary", "shadow", "nope", "5"}, `unknown operation "nope"; the operations are `},
		{[]string{"canary", "rollback", "nope"}, `unknown operation "nope"; the operations are `},
		{[]string{"canary", "advance", "nope"}, `unknown operation "nope"; the operations are `},
	}
	for _, c := range cases {
		out, err := runCLI(t, append(c.args, "--file", path, "--reason", "test")...)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("gitgate %s: %v, want %q\n%s", strings.Join(c.args, " "), err, c.want, out)
		}
	}
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
	for _, stage := range []string{"10", "50%", "100", "0"} {
		if out, err := runCLI(t, "canary", "set", "status", stage, "--file", path, "--reason", "stage"); err != nil {
			t.Errorf("canary set status %s: %v\n%s", stage, err, out)
		}
	}
}

// runCLI runs gitgate's command line in process and returns its output.
func runCLI(t *testing.T, args ...string) (string, error) {
	t.Helper()
	root := newRootCmd()
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&out)
	root.SetArgs(args)
	err := root.ExecuteContext(t.Context())
	return out.String(), err
}
