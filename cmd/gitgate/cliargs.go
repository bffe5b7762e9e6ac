package main

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/gitgate/gitgate/backends"
	"github.com/gitgate/gitgate/canary"
	"github.com/gitgate/gitgate/internal/suggest"
	"github.com/spf13/cobra"
)

// unknownOp is the error for an operation the operation table does not
// have, listing the ones it has.
func unknownOp(op string) error {
	return fmt.Errorf("unknown operation %q; the operations are %s", op, strings.Join(backends.OpNames(), ", "))
}

// checkOp refuses an operation that is not in the operation table.
func checkOp(op string) error {
	if !slices.Contains(backends.OpNames(), op) {
		return unknownOp(op)
	}
	return nil
}

// parsePercent reads PERCENT ("25" or "25%") as a whole number from 0 to
// 100.
func parsePercent(arg string) (int, error) {
	pct, err := strconv.Atoi(strings.TrimSuffix(arg, "%"))
	if err != nil || pct < 0 || pct > 100 {
		return 0, fmt.Errorf("PERCENT %q must be a whole number from 0 to 100", arg)
	}
	return pct, nil
}

// parseStage reads canary set's PERCENT, which must be a canary stage:
// the ledger's analysis and `canary advance` move between stages only.
func parseStage(arg string) (int, error) {
	pct, err := parsePercent(arg)
	if err != nil || !slices.Contains(canary.Stages, pct) {
		return 0, fmt.Errorf("PERCENT %q is not a canary stage; the stages are %s", arg, stageList())
	}
	return pct, nil
}

func stageList() string {
	s := make([]string, len(canary.Stages))
	for i, st := range canary.Stages {
		s[i] = strconv.Itoa(st)
	}
	return strings.Join(s, ", ")
}

// requireSubcommands makes every command below root that only groups
// others (no Run of its own) refuse a missing or unknown subcommand with
// an error listing them, instead of printing help and succeeding.
func requireSubcommands(root *cobra.Command) {
	for _, c := range root.Commands() {
		if c.HasSubCommands() && c.Run == nil && c.RunE == nil {
			c.Args = cobra.ArbitraryArgs
			c.RunE = unknownSubcommand
		}
		requireSubcommands(c)
	}
}

func unknownSubcommand(cmd *cobra.Command, args []string) error {
	var names []string
	for _, c := range cmd.Commands() {
		if c.IsAvailableCommand() {
			names = append(names, c.Name())
		}
	}
	if len(args) == 0 {
		return fmt.Errorf("%q needs a command: %s (see %s --help)", cmd.CommandPath(), strings.Join(names, ", "), cmd.CommandPath())
	}
	msg := fmt.Sprintf("unknown command %q for %q", args[0], cmd.CommandPath())
	if near, ok := suggest.Closest(args[0], names); ok {
		msg += fmt.Sprintf(" (did you mean %s?)", near)
	}
	return fmt.Errorf("%s; the commands are %s", msg, strings.Join(names, ", "))
}
