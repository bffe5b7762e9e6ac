package main

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/gitgate/gitgate/gateway"
	"github.com/spf13/cobra"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

// globalOptions are the flags every subcommand shares.
type globalOptions struct {
	configPath string
}

func newRootCmd() *cobra.Command {
	o := &globalOptions{}
	root := &cobra.Command{
		Use:           "gitgate",
		Short:         "One git endpoint for AI agents in sandboxes",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.PersistentFlags().StringVar(&o.configPath, "config", "", "configuration file (default: the embedded configs/gitgate.yaml; GITGATE_* variables override keys)")
	root.AddCommand(newServeCmd(o), newBackendCmd(o), newDevCmd(o), newFlagsCmd(o), newCanaryCmd(o), newKillCmd(o),
		newReportCmd(o), newDrillCmd(o), newBranchesCmd(o), newBudgetCmd(o), newHashTokenCmd(), newVersionCmd())
	requireSubcommands(root)
	return root
}

func newVersionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version",
		Args:  cobra.NoArgs,
		Run: func(cmd *cobra.Command, _ []string) {
			fmt.Fprintf(cmd.OutOrStdout(), "gitgate %s (%s%s)\n", version, revision(), runtime.Version())
		},
	}
}

// revision returns "commit <id>, " when the build recorded one.
func revision() string {
	if info, ok := debug.ReadBuildInfo(); ok {
		for _, s := range info.Settings {
			if s.Key == "vcs.revision" && len(s.Value) >= 12 {
				return "commit " + s.Value[:12] + ", "
			}
		}
	}
	return ""
}

func newHashTokenCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "hash-token [TOKEN]",
		Short: "Print the token_sha256 of an agent token (a new random token when none is given)",
		Example: `  gitgate hash-token                 # new token and its hash
  gitgate hash-token "$AGENT_TOKEN"  # hash of an existing token`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			token := ""
			if len(args) == 1 {
				token = args[0]
			} else {
				var err error
				if token, err = newToken("gga_"); err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "token:        %s\n", token)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "token_sha256: %s\n", gateway.HashToken(token))
			return nil
		},
	}
}

// newToken returns prefix plus 32 random bytes, URL-safe base64.
func newToken(prefix string) (string, error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("random token: %w", err)
	}
	return prefix + base64.RawURLEncoding.EncodeToString(b[:]), nil
}
