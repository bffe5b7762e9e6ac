package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/gitgate/gitgate/flags"
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
	cfg, err := readConfig(c.o.configPath, os.Getenv) // flags.path only: no token is needed to edit flags
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

// edit loads the flag file, applies change, validates it and records it
// with who, why and what in the change log beside it, as one transaction:
// every edit holds an exclusive lock on the change log from reading the
// flags to saving them, so that two edits (an operator's and the gateway's
// automatic rollback, say) never lose one another; and the change record is
// appended and synced before the flag file is atomically replaced, so that
// whoever sees the new flags also finds their record. If the flag file
// cannot be written, the record is taken back.
func (c *changeOptions) edit(out io.Writer, what string, change func(*flags.File) error) error {
	path, err := c.path()
	if err != nil {
		return err
	}
	if _, err := os.Stat(path); err != nil {
		return fmt.Errorf("read flags: %w", err) // and leave no change log beside a mistyped path
	}
	log, logErr := openChangeLog(path + ".changes.jsonl")
	if logErr == nil {
		defer log.Close() // and unlocked
	}
	f, err := flags.Load(path)
	if err != nil {
		return fmt.Errorf("read flags: %w", err)
	}
	if err := change(f); err != nil {
		return err
	}
	if err := f.Validate(opNames()); err != nil {
		return fmt.Errorf("the change would make the flags invalid: %w", err)
	}
	entry, _ := json.Marshal(map[string]string{"at": time.Now().UTC().Format(time.RFC3339Nano), "by": c.who(), "reason": c.reason, "change": what})
	var before int64
	if logErr == nil {
		before, logErr = log.append(entry)
	}
	if err := f.Save(path); err != nil {
		if logErr == nil {
			if terr := log.Truncate(before); terr != nil {
				return fmt.Errorf("write flags: %w (and the change log still records the change: %v)", err, terr)
			}
		}
		return fmt.Errorf("write flags: %w", err)
	}
	if logErr != nil {
		// The change stands (a kill switch must work even when its record
		// cannot be written), but say so.
		return fmt.Errorf("flags changed, but the change log could not be written: %w", logErr)
	}
	fmt.Fprintf(out, "%s (by %s: %s)\n", what, c.who(), c.reason)
	return nil
}

// changeLog is the flag change log, opened for appending and locked
// (exclusively, across processes) until closed.
type changeLog struct{ *os.File }

// changeLogLockWait is how long an edit waits for another edit's lock on
// the change log. Edits take milliseconds; a holder stuck longer (a stopped
// process) must not stop the kill switch, which then changes the flags
// without a record and says so.
var changeLogLockWait = 10 * time.Second

func openChangeLog(path string) (*changeLog, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return nil, err
	}
	for start := time.Now(); ; time.Sleep(10 * time.Millisecond) {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return &changeLog{f}, nil
		}
		if err != syscall.EWOULDBLOCK || time.Since(start) > changeLogLockWait {
			f.Close()
			if err == syscall.EWOULDBLOCK {
				return nil, fmt.Errorf("%s is locked by another edit (for more than %s)", path, changeLogLockWait)
			}
			return nil, fmt.Errorf("lock %s: %w", path, err)
		}
	}
}

// append writes line durably at the end of the log and returns the size
// the log had before (to take the line back).
func (l *changeLog) append(line []byte) (int64, error) {
	st, err := l.Stat()
	if err != nil {
		return 0, err
	}
	if _, err := l.Write(append(line, '\n')); err != nil {
		_ = l.Truncate(st.Size())
		return 0, err
	}
	return st.Size(), l.Sync()
}

func newFlagsCmd(o *globalOptions) *cobra.Command {
	c := &changeOptions{o: o}
	show := &cobra.Command{
		Use: "show", Short: "Show per operation the share on Approach 2, the shadow rate and the kill switch",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			path, err := c.path()
			if err != nil {
				return err
			}
			f, err := flags.Load(path)
			if err != nil {
				return err
			}
			return printFlags(cmd.OutOrStdout(), f)
		},
	}
	show.Flags().StringVar(&c.file, "file", "", "flag file (default: flags.path of the configuration)")
	root := &cobra.Command{Use: "flags", Short: "Inspect the canary flags"}
	root.AddCommand(show, newFlagsServeCmd(o))
	return root
}

func printFlags(out io.Writer, f *flags.File) error {
	fmt.Fprintf(out, "kill switch: %s\n\n", map[bool]string{true: "ON (everything on approach1)", false: "off"}[f.Kill()])
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "OPERATION\tAPPROACH2\tSHADOW")
	for _, op := range opNames() {
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
		Use: "rollback OP|all", Short: "Send OP (or every operation) back to Approach 1",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return rb.edit(cmd.OutOrStdout(), args[0]+": rolled back to approach1", func(f *flags.File) error {
				targets := []string{args[0]}
				if args[0] == "all" {
					targets = opNames()
				} else if _, ok := f.Flags[flags.RouteFlag(args[0])]; !ok {
					return unknownOp(args[0])
				}
				for _, op := range targets {
					_ = f.SetRoute(op, 0)
				}
				return nil
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
missing or broken. Gateways with listen.admin_token_sha256 set want their
admin token, read from the variable --admin-token-env names.`,
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
				if err := setOverride(a, on, c.who(), c.reason, os.Getenv(tokenEnv)); err != nil {
					return fmt.Errorf("%s: %w", a, err)
				}
				fmt.Fprintf(cmd.OutOrStdout(), "override %s on %s\n", args[0], a)
			}
			if fileErr != nil {
				fmt.Fprintf(cmd.ErrOrStderr(), "warning: the flag file was not changed: %v\n", fileErr)
			}
			return nil
		},
	}
	c.bind(cmd, true)
	cmd.Flags().StringSliceVar(&admins, "admin", nil, "admin listener URLs of running gateways to set the override on")
	cmd.Flags().StringVar(&tokenEnv, "admin-token-env", "GITGATE_ADMIN_TOKEN", "environment variable holding the admin token, sent when set")
	return cmd
}

// setOverride sets (on) or clears (off) the kill-switch override of a
// running gateway through its admin listener.
func setOverride(adminURL string, on bool, by, reason, token string) error {
	client := &http.Client{Timeout: 5 * time.Second}
	var req *http.Request
	var err error
	if on {
		body, _ := json.Marshal(map[string]any{"kill": true, "by": by, "reason": reason})
		req, err = http.NewRequest(http.MethodPost, strings.TrimSuffix(adminURL, "/")+"/kill", bytes.NewReader(body))
		if req != nil {
			req.Header.Set("Content-Type", "application/json")
		}
	} else {
		req, err = http.NewRequest(http.MethodDelete, strings.TrimSuffix(adminURL, "/")+"/kill?by="+url.QueryEscape(by)+"&reason="+url.QueryEscape(reason), nil)
	}
	if err != nil {
		return fmt.Errorf("admin URL: %w", err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
		return fmt.Errorf("%s: %s", resp.Status, strings.TrimSpace(string(msg)))
	}
	return nil
}
