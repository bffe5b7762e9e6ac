package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/gitgate/gitgate/backends"
	"github.com/gitgate/gitgate/backends/pause"
	"github.com/gitgate/gitgate/configs"
	"github.com/gitgate/gitgate/flags"
	"github.com/gitgate/gitgate/gateway/admin"
	"github.com/spf13/cobra"
)

// changeOptions are what every flag change needs: which file, who, why.
type changeOptions struct {
	o      *globalOptions
	file   string
	by     string
	reason string
}

func (c *changeOptions) bind(cmd *cobra.Command, needReason bool) {
	cmd.Flags().StringVar(&c.file, "file", "", "flag file (default: flags.path of the configuration)")
	cmd.Flags().StringVar(&c.by, "by", "", "who makes the change (default: $USER)")
	cmd.Flags().StringVar(&c.reason, "reason", "", "why (recorded with the change)")
	if needReason {
		_ = cmd.MarkFlagRequired("reason")
	}
}

func (c *changeOptions) path() (string, error) {
	if c.file != "" {
		return c.file, nil
	}
	cfg, err := configs.Read(c.o.configPath, os.Getenv) // flags.path only: no token is needed to edit flags
	if err != nil {
		return "", err
	}
	if cfg.Flags.Path == "" {
		return "", errors.New("no flag file: pass --file or set flags.path")
	}
	return cfg.Flags.Path, nil
}

func (c *changeOptions) who() string {
	if c.by != "" {
		return c.by
	}
	if u := os.Getenv("USER"); u != "" {
		return u
	}
	return "unknown"
}

// edit changes the flag file as one recorded transaction (flags.Edit):
// who and why come from the command's flags, what from the command.
func (c *changeOptions) edit(out io.Writer, what string, change func(*flags.File) error) error {
	path, err := c.path()
	if err != nil {
		return err
	}
	e := flags.Edit{By: c.who(), Reason: c.reason, Summary: what, Ops: backends.OpNames(), LockWait: changeLogLockWait}
	if err := e.Apply(path, change); err != nil {
		return err
	}
	fmt.Fprintf(out, "%s (by %s: %s)\n", what, c.who(), c.reason)
	return nil
}

// changeLogLockWait is how long an edit waits for another edit's lock on
// the change log (flags.Edit.LockWait); a test shortens it.
var changeLogLockWait = flags.DefaultEditLockWait

func newFlagsCmd(o *globalOptions) *cobra.Command {
	c := &changeOptions{o: o}
	var adminURL string
	show := &cobra.Command{
		Use: "show", Short: "Show per operation the share on Approach 2, the shadow rate and the kill switch",
		Long: `show prints the flag file. With --admin it prints what that gateway applies
(read from its admin listener's /status): the kill switch and what holds it on
(flag file, admin override, or both), each operation's shares as configured
and as effective, automatic rollbacks and breakers, and says where the flag
file differs from the effective state.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if adminURL != "" {
				st, err := admin.NewClient(adminURL, "").Status(cmd.Context())
				if err != nil {
					return fmt.Errorf("%s: %w", adminURL, err)
				}
				return printStatus(cmd.OutOrStdout(), adminURL, st)
			}
			path, err := c.path()
			if err != nil {
				return err
			}
			f, err := flags.Load(path)
			if err != nil {
				return err
			}
			if err := printFlags(cmd.OutOrStdout(), f); err != nil {
				return err
			}
			if ov, ovPath, ok := c.override(path); ok && ov.Kill {
				fmt.Fprintf(cmd.OutOrStdout(), "\nNOTE: a kill-switch override is ON in %s (set by %s at %s: %s): a gateway using it sends every call to approach1 whatever this file says; see `gitgate flags show --admin URL`, clear it with `gitgate kill off --admin URL`\n",
					ovPath, ov.By, ov.At.Format(time.RFC3339), ov.Reason)
			}
			return nil
		},
	}
	show.Flags().StringVar(&c.file, "file", "", "flag file (default: flags.path of the configuration)")
	show.Flags().StringVar(&adminURL, "admin", "", "admin listener URL of a running gateway: show the state it applies instead of the file's")
	root := &cobra.Command{Use: "flags", Short: "Inspect the canary flags"}
	root.AddCommand(show, newFlagsServeCmd(o))
	return root
}

func printFlags(out io.Writer, f *flags.File) error {
	fmt.Fprintf(out, "kill switch: %s\n\n", map[bool]string{true: "ON (everything on approach1)", false: "off"}[f.Kill()])
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "OPERATION\tAPPROACH2\tSHADOW")
	for _, op := range backends.OpNames() {
		rate, _ := f.Flags[flags.ShadowFlag(op)].Variants["rate"].(float64)
		fmt.Fprintf(tw, "%s\t%d%%\t%g%%\n", op, f.Route(op), rate*100)
	}
	return tw.Flush()
}

func newCanaryCmd(o *globalOptions) *cobra.Command {
	root := &cobra.Command{Use: "canary", Short: "Move operations between Approach 1 and Approach 2"}
	set := &changeOptions{o: o}
	setCmd := &cobra.Command{
		Use: "set OP PERCENT", Short: "Send PERCENT of OP's workspaces to Approach 2 (stages: 0, 10, 50, 100)",
		Example: `  gitgate canary set status 10 --reason "start the canary"`,
		Args:    cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			pct, err := parseStage(args[1])
			if err != nil {
				return err
			}
			op := args[0]
			if err := checkOp(op); err != nil {
				return err
			}
			return set.edit(cmd.OutOrStdout(), fmt.Sprintf("%s: %d%% to approach2", op, pct), func(f *flags.File) error {
				if _, ok := f.Flags[flags.RouteFlag(op)]; !ok {
					return unknownOp(op)
				}
				return f.SetRoute(op, pct)
			})
		},
	}
	set.bind(setCmd, true)
	rb := &changeOptions{o: o}
	rbCmd := &cobra.Command{
		Use: "rollback OP|all", Short: "Send OP (or every operation) back to Approach 1 and stop its shadow traffic (shadow 0%)",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return rb.edit(cmd.OutOrStdout(), args[0]+": "+flags.RolledBackSummary, func(f *flags.File) error {
				targets := []string{args[0]}
				if args[0] == flags.AllOps {
					targets = backends.OpNames()
				} else if _, ok := f.Flags[flags.RouteFlag(args[0])]; !ok {
					return unknownOp(args[0])
				}
				return f.RollBack(targets...)
			})
		},
	}
	rb.bind(rbCmd, true)
	sh := &changeOptions{o: o}
	shCmd := &cobra.Command{
		Use: "shadow OP PERCENT", Short: "Shadow PERCENT of OP's calls on the other backend (reads mirrored, writes predicted) and compare",
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			pct, err := parsePercent(args[1])
			if err != nil {
				return err
			}
			op := args[0]
			if err := checkOp(op); err != nil {
				return err
			}
			return sh.edit(cmd.OutOrStdout(), fmt.Sprintf("%s: shadow %d%%", op, pct), func(f *flags.File) error {
				if _, ok := f.Flags[flags.ShadowFlag(op)]; !ok {
					return unknownOp(op)
				}
				return f.SetShadow(op, float64(pct)/100)
			})
		},
	}
	sh.bind(shCmd, true)
	root.AddCommand(setCmd, rbCmd, newAdvanceCmd(o), shCmd)
	return root
}

func newKillCmd(o *globalOptions) *cobra.Command {
	c := &changeOptions{o: o}
	var admins []string
	var tokenEnv string
	cmd := &cobra.Command{
		Use:   "kill on|off",
		Short: "Engage or release the kill switch: every operation to Approach 1",
		Long: `kill sets the kill switch in the flag file (running gateways apply it within a
second). With --admin it also sets (on) or clears (off) the local override on
those gateways' admin listeners, which works even when the flag file is
missing or broken, and prints the kill switch each gateway then applies.
Changing the override needs the gateway's admin token (listen.admin_token_sha256),
read from the variable --admin-token-env names. kill off without --admin
fails when a kill-switch override is still on beside the flag file (the
override file gateways keep): calls stay on approach1 until it is cleared.`,
		Example: `  gitgate kill on --reason "approach2 errors" --admin http://127.0.0.1:7421`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if args[0] != "on" && args[0] != "off" {
				return fmt.Errorf("kill takes on or off, not %q", args[0])
			}
			on := args[0] == "on"
			fileErr := c.edit(cmd.OutOrStdout(), "kill switch "+args[0], func(f *flags.File) error { f.SetKill(on); return nil })
			if fileErr != nil && len(admins) == 0 {
				return fileErr
			}
			for _, a := range admins {
				ac := admin.NewClient(a, os.Getenv(tokenEnv))
				change := ac.ClearOverride
				if on {
					change = ac.SetKillOverride
				}
				if err := change(cmd.Context(), c.who(), c.reason); err != nil {
					return fmt.Errorf("%s: %w", a, err)
				}
				fmt.Fprintf(cmd.OutOrStdout(), "override %s on %s\n", args[0], a)
				// What the gateway now applies, from the gateway itself, once
				// its flag provider has taken the file's change (or after
				// killApplyWait, when it shows what still holds).
				if st, err := appliedKill(cmd.Context(), ac, on); err != nil {
					fmt.Fprintf(cmd.ErrOrStderr(), "warning: %s: cannot read its state: %v\n", a, err)
				} else {
					printKill(cmd.OutOrStdout(), a, st)
				}
			}
			if fileErr != nil {
				fmt.Fprintf(cmd.ErrOrStderr(), "warning: the flag file was not changed: %v\n", fileErr)
			}
			if !on && len(admins) == 0 {
				// Releasing in the file does not release an override a
				// gateway holds: say so, and fail, since calls stay on
				// Approach 1.
				path, _ := c.path()
				if ov, ovPath, ok := c.override(path); ok && ov.Kill {
					return fmt.Errorf("the kill switch is off in the flag file, but a kill-switch override is ON in %s (set by %s at %s: %s): gateways using it keep every call on approach1; clear it with `gitgate kill off --admin URL`",
						ovPath, ov.By, ov.At.Format(time.RFC3339), ov.Reason)
				}
			}
			return nil
		},
	}
	c.bind(cmd, true)
	cmd.Flags().StringSliceVar(&admins, "admin", nil, "admin listener URLs of running gateways to set the override on")
	cmd.Flags().StringVar(&tokenEnv, "admin-token-env", "GITGATE_ADMIN_TOKEN", "environment variable holding the admin token, sent when set")
	return cmd
}

// killApplyWait bounds how long `gitgate kill --admin` waits for a
// gateway to apply the kill switch as changed before it prints the state.
const killApplyWait = 5 * time.Second

// appliedKill reads the gateway's state until its kill switch is in force
// as wanted (on) or killApplyWait passed, and returns the last state read:
// the flag provider applies a change of the file a moment after the file
// changed, and /status says what the next call gets.
func appliedKill(ctx context.Context, ac *admin.Client, on bool) (admin.Status, error) {
	deadline := time.Now().Add(killApplyWait)
	for {
		st, err := ac.Status(ctx)
		if err != nil || st.Kill.Effective == on || time.Now().After(deadline) {
			return st, err
		}
		if !pause.For(ctx, 20*time.Millisecond) {
			return st, ctx.Err()
		}
	}
}

// override returns the kill-switch override kept beside the flag file at
// flagPath (flags.override_path of the configuration when the flag file
// comes from it, <flag file>.override.json otherwise), if there is one.
func (c *changeOptions) override(flagPath string) (flags.Override, string, bool) {
	path := flags.OverridePath(flagPath)
	if c.file == "" {
		if cfg, err := configs.Load(c.o.configPath, os.Getenv); err == nil && cfg.Flags.OverridePath != "" {
			path = cfg.Flags.OverridePath
		}
	}
	ov, ok, err := flags.ReadOverride(path)
	return ov, path, ok && err == nil
}

func onOff(on bool) string { return map[bool]string{true: "ON", false: "off"}[on] }

// printKill prints the kill switch a gateway applies, and what holds it on
// when the flag file alone does not explain it.
func printKill(out io.Writer, adminURL string, st admin.Status) {
	k := st.Kill
	fmt.Fprintf(out, "kill switch on %s: %s", adminURL, onOff(k.Effective))
	if k.Effective {
		fmt.Fprint(out, " (everything on approach1)")
	}
	fmt.Fprintf(out, "; in the flags: %s", onOff(k.Flags))
	if k.Override != nil {
		fmt.Fprintf(out, "; admin override: %s, set by %s at %s: %s", map[bool]string{true: "kill ON", false: "kill off"}[k.Override.Kill],
			k.Override.By, k.Override.At.Format(time.RFC3339), k.Override.Reason)
	} else {
		fmt.Fprint(out, "; admin override: none")
	}
	fmt.Fprintln(out)
	if k.Override != nil && k.Override.Kill && !k.Flags {
		fmt.Fprintf(out, "  the flag file says off, but the ADMIN OVERRIDE keeps the kill switch ON: clear it with `gitgate kill off --admin %s`\n", adminURL)
	}
	if st.FailSafe != "" {
		fmt.Fprintf(out, "  the flags cannot be used (%s): every call goes to approach1\n", st.FailSafe)
	}
}

// printStatus prints what a gateway applies (flags show --admin).
func printStatus(out io.Writer, adminURL string, st admin.Status) error {
	printKill(out, adminURL, st)
	fmt.Fprintln(out)
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "OPERATION\tAPPROACH2\tSHADOW\tEFFECTIVE APPROACH2\tEFFECTIVE SHADOW\tBREAKER\tNOTE")
	pct := func(v float64) string { return strconv.FormatFloat(v*100, 'g', -1, 64) + "%" }
	for _, o := range st.Ops {
		var note []string
		if o.LocalRollback {
			note = append(note, "rolled back on this gateway")
		}
		if rb, ok := st.AutoRollbacks[o.Op]; ok {
			note = append(note, "automatic rollback at "+rb.At.Format(time.RFC3339)+": "+rb.Reason)
		}
		if o.Route.Effective != o.Route.Configured || o.Shadow.Effective != o.Shadow.Configured {
			note = append(note, "DIFFERS from the flags")
		}
		breaker := st.Breakers[o.Op]
		if breaker == "" {
			breaker = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", o.Op, pct(o.Route.Configured), pct(o.Shadow.Configured),
			pct(o.Route.Effective), pct(o.Shadow.Effective), breaker, strings.Join(note, "; "))
	}
	return tw.Flush()
}
