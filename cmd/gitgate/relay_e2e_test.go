package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gitgate/gitgate/internal/backendtest"
	"github.com/gitgate/gitgate/internal/e2bfake"
	"github.com/gitgate/gitgate/internal/relaytest"
)

// TestAgentFlowThroughTheRelay: with the relay configured (relay.listen
// for the gateway, relay.service_listen for the Approach 2 service), the
// agent's flow works on either backend, on the E2B stand-in (through
// relay.public_url) and over stdio beside an HTTP gateway holding
// relay.listen, with git in the sandboxes holding
// capabilities: the project's tokens are nowhere a sandbox's git could see
// them (the argv and environment of every git process, recorded by a
// wrapper; every file the test's processes wrote: sandboxes, state
// directories, journals), and the relay counted the bytes it relayed.
func TestAgentFlowThroughTheRelay(t *testing.T) {
	for _, backend := range []string{"approach1", "approach2", "e2b", "stdio"} {
		t.Run(backend, func(t *testing.T) {
			root := t.TempDir()
			wrapper, record := relaytest.GitRecorder(t)
			w := newWorld(t)
			w.gitPath = wrapper
			w.extraYAML = "relay: {listen: \"127.0.0.1:0\", service_listen: \"127.0.0.1:0\"}\n"
			var standIn *e2bfake.Server
			if backend == "e2b" {
				// E2B sandboxes reach the relay at its public URL only.
				var err error
				if standIn, err = e2bfake.Start(e2bfake.Config{APIKey: e2bKey}); err != nil {
					t.Fatal(err)
				}
				t.Cleanup(standIn.Close)
				w.e2bURL = standIn.URL()
				addr := freeAddr(t)
				w.extraYAML = fmt.Sprintf("relay: {listen: %q, public_url: %q}\n", addr, "http://"+addr)
			}
			if backend == "stdio" {
				// An HTTP gateway holds relay.listen; a stdio process beside
				// it relays on a port of its own.
				w.extraYAML = fmt.Sprintf("relay: {listen: %q}\n", freeAddr(t))
			}
			w.cfg = w.config(t)
			metrics := ""
			if backend == "approach2" {
				w.redisPrefix = backendtest.RedisPrefix(t, backendtest.Redis(t))
				w.cfg = w.config(t)
				addr, _ := w.startBackend(t)
				w.cfg.Backend.Default = "approach2"
				w.cfg.Approach2.Target, w.cfg.Approach2.Token, w.cfg.Approach2.Insecure = addr, serviceToken, true
			}
			w.startHTTP(t)
			if backend == "stdio" {
				agentFlow(t, w, w.stdioClient(t))
			} else {
				agentFlow(t, w, w.httpClient(t, agentToken))
			}
			metrics = scrape(t, w.adminURL+"/metrics")
			if backend == "approach1" && metricValue(metrics, `gitgate_relay_bytes_total{direction="out",project="alpha"}`) == 0 {
				t.Errorf("the gateway's relay counted no bytes:\n%s", grepLines(metrics, "gitgate_relay"))
			}

			seen, err := os.ReadFile(record)
			if err != nil || !bytes.Contains(seen, []byte("/c/ggcap_")) {
				t.Fatalf("git did not go through a relay (%v)", err)
			}
			forms := relaytest.TokenForms("x-access-token", gitToken, gitReadToken)
			scanned := 0
			// Everything the test's processes wrote lives under the test's
			// temporary directories (and the stand-in's sandboxes under its
			// root).
			dirs := []string{filepath.Dir(root)}
			if standIn != nil {
				dirs = append(dirs, standIn.Root())
			}
			for _, dir := range dirs {
				_ = filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
					if err == nil && d.Type().IsRegular() {
						data, _ := os.ReadFile(path)
						scanned++
						for _, f := range forms {
							if bytes.Contains(data, []byte(f)) {
								t.Errorf("a project token (as %q) is in %s", f, path)
							}
						}
					}
					return nil
				})
			}
			if scanned < 20 {
				t.Errorf("only %d files scanned", scanned)
			}
			if standIn != nil {
				// Everything the stand-in's envd and API received: commands
				// with their arguments and environment, uploads.
				records := standIn.Records()
				for _, r := range records {
					data := fmt.Sprint(r.Method, r.Host, r.Path, r.Query, r.Header) + string(r.Body)
					for _, f := range forms {
						if strings.Contains(data, f) {
							t.Errorf("a project token (as %q) is in a request to the E2B stand-in: %s %s", f, r.Method, r.Path)
						}
					}
				}
				if len(records) < 10 {
					t.Errorf("the stand-in recorded %d requests", len(records))
				}
			}
		})
	}
}

func grepLines(text, word string) string {
	var out []string
	for line := range strings.SplitSeq(text, "\n") {
		if strings.Contains(line, word) {
			out = append(out, line)
		}
	}
	return strings.Join(out, "\n")
}
