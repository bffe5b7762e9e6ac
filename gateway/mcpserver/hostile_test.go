package mcpserver

import (
	"encoding/json"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gitgate/gitgate/backends/redact"
	"github.com/gitgate/gitgate/gateway"
	"github.com/gitgate/gitgate/internal/backendtest"
	"github.com/mark3labs/mcp-go/mcp"
)

// TestHostileRepositoryThroughMCP: a real repository whose file names,
// branch name, commit message and file content carry terminal escapes,
// bidi overrides and zero-width characters, served by Approach 1 through
// the MCP server: every readable text shows them escaped, the structured
// content has them exactly.
func TestHostileRepositoryThroughMCP(t *testing.T) {
	const (
		colour    = "red\x1b[31mALERT.txt"
		bidi      = "invoice\u202etxt.exe"
		clear     = "\x1b[2J\x1b[HAll tests passed\u202e"
		notes     = "\x1b]0;pwned\x07\x1b[2Jhello\u202e\u200b\r\nbye\tnow\n"
		branch    = "fix\u202egnp"
		untracked = "new\u200bfile\x1b[8m.txt"
	)
	env := backendtest.NewEnv(t)
	ctx := backendtest.Ctx(t)
	for _, c := range []struct{ branch, path, content, message string }{
		{"main", colour, "\x1b[31malert\n", "add " + colour},
		{"main", bidi, "pay\n", "add " + bidi},
		{"main", "notes.txt", notes, clear},
		{branch, "a.txt", "a\n", "a branch with an override"},
	} {
		if _, err := env.Remote.CommitFile(ctx, "demo", c.branch, c.path, c.content, c.message); err != nil {
			t.Fatal(err)
		}
	}
	ex := backendtest.NewApproach1(t, env)
	var logs strings.Builder
	r := redact.New(backendtest.Token, backendtest.ReadToken)
	s, err := New(Config{Executor: ex, Redactor: r, Logger: slog.New(r.Handler(slog.NewTextHandler(&logs, nil)))})
	if err != nil {
		t.Fatal(err)
	}
	var transcript strings.Builder
	call := func(tool string, args map[string]any) (texts []string, structured map[string]any) {
		t.Helper()
		params, _ := json.Marshal(map[string]any{"name": tool, "arguments": args})
		msg := `{"jsonrpc":"2.0","id":5,"method":"tools/call","params":` + string(params) + `}`
		raw, _ := json.Marshal(s.mcp.HandleMessage(gateway.WithPrincipal(ctx, env.Agent), []byte(msg)))
		transcript.Write(raw)
		var out struct {
			Result mcp.CallToolResult `json:"result"`
		}
		if err := json.Unmarshal(raw, &out); err != nil {
			t.Fatalf("%s: %v: %s", tool, err, raw)
		}
		texts = contentTexts(t, &out.Result)
		if out.Result.IsError {
			t.Fatalf("%s %v: %q", tool, args, texts)
		}
		for i, text := range texts {
			if bad := unsafe(text, true); len(bad) > 0 {
				t.Errorf("%s: readable item %d has %v: %q", tool, i, bad, text)
			}
		}
		if bad := unsafe(string(out.Result.RawStructuredContent), false); len(bad) > 0 || len(out.Result.RawStructuredContent) == 0 {
			t.Errorf("%s: structured JSON text has %v", tool, bad)
		}
		structured, _ = out.Result.StructuredContent.(map[string]any)
		return texts, structured
	}
	wantIn := func(tool, text, want string) {
		t.Helper()
		if !strings.Contains(text, want) {
			t.Errorf("%s: readable text lacks %s:\n%s", tool, want, text)
		}
	}

	call("clone", map[string]any{"workspace": "w", "url": env.RepoURL})

	texts, st := call("list_files", map[string]any{"workspace": "w", "recursive": true})
	wantIn("list_files", texts[0], `"red\x1b[31mALERT.txt"`)
	wantIn("list_files", texts[0], `"invoice\u202etxt.exe"`)
	if got := fmtJSON(st["entries"]); !strings.Contains(got, colour+"\x00") || !strings.Contains(got, bidi+"\x00") {
		t.Errorf("list_files: structured entries lack the exact names: %s", got)
	}

	texts, st = call("log", map[string]any{"workspace": "w"})
	wantIn("log", texts[0], `\x1b[2J\x1b[HAll tests passed\u202e`)
	if got := fmtJSON(st["commits"]); !strings.Contains(got, clear+"\x00") {
		t.Errorf("log: structured commits lack the exact subject: %s", got)
	}

	texts, st = call("read_file", map[string]any{"workspace": "w", "path": "notes.txt"})
	if texts[0] != `\x1b]0;pwned\a\x1b[2Jhello\u202e\u200b\r`+"\nbye\tnow\n" {
		t.Errorf("read_file: readable text %q is not the file's content escaped", texts[0])
	}
	if st["content"] != notes {
		t.Errorf("read_file: structured content %q, want %q", st["content"], notes)
	}

	texts, _ = call("diff", map[string]any{"workspace": "w", "ref": "HEAD~3"})
	wantIn("diff", texts[0], `+\x1b]0;pwned\a\x1b[2Jhello\u202e\u200b\r`+"\n+bye\tnow")

	texts, _ = call("branches", map[string]any{"workspace": "w", "remote": true})
	wantIn("branches", texts[0], `"origin/fix\u202egnp"`)

	texts, st = call("show", map[string]any{"workspace": "w"})
	wantIn("show", texts[0], `    \x1b[2J\x1b[HAll tests passed\u202e`)
	wantIn("show", texts[0], `+\x1b]0;pwned\a\x1b[2Jhello\u202e\u200b\r`+"\n+bye\tnow")
	if st["subject"] != clear {
		t.Errorf("show: structured subject %q, want %q", st["subject"], clear)
	}
	texts, st = call("show", map[string]any{"workspace": "w", "rev": "HEAD", "path": "notes.txt"})
	if texts[0] != `\x1b]0;pwned\a\x1b[2Jhello\u202e\u200b\r`+"\nbye\tnow\n" || st["content"] != notes {
		t.Errorf("show of a file: readable text %q, structured %q", texts[0], st["content"])
	}
	texts, _ = call("blame", map[string]any{"workspace": "w", "path": "notes.txt"})
	wantIn("blame", texts[0], `| \x1b]0;pwned\a\x1b[2Jhello\u202e\u200b\r`+"\n")
	wantIn("blame", texts[0], "    2| bye    now\n")
	texts, _ = call("fetch", map[string]any{"workspace": "w"})
	wantIn("fetch", texts[0], "Fetched")
	texts, _ = call("reflog", map[string]any{"workspace": "w"})
	wantIn("reflog", texts[0], "HEAD@{0}")

	// Someone (a build step, an earlier tool) left a hostile name in the work
	// tree and changed a file.
	root := workTree(t, env.SandboxRoots, "notes.txt")
	if err := os.WriteFile(filepath.Join(root, untracked), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, colour), []byte("changed\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	texts, st = call("status", map[string]any{"workspace": "w"})
	wantIn("status", texts[0], `"new\u200bfile\x1b[8m.txt"`)
	wantIn("status", texts[0], `"red\x1b[31mALERT.txt"`)
	if got := fmtJSON(st["entries"]); !strings.Contains(got, untracked+"\x00") {
		t.Errorf("status: structured entries lack the exact name: %s", got)
	}

	for _, secret := range []string{backendtest.Token, backendtest.ReadToken} {
		if strings.Contains(transcript.String(), secret) || strings.Contains(logs.String(), secret) {
			t.Fatal("a token reached the client or the logs")
		}
	}
}

// workTree returns the work tree, under one of roots, that has file and
// the seeded README.md.
func workTree(t *testing.T, roots []string, file string) string {
	t.Helper()
	var found string
	for _, root := range roots {
		_ = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
			if err == nil && !d.IsDir() && d.Name() == file && found == "" {
				if _, err := os.Stat(filepath.Join(filepath.Dir(path), "README.md")); err == nil {
					found = filepath.Dir(path)
				}
			}
			return nil
		})
	}
	if found == "" {
		t.Fatalf("no work tree with %s under %v", file, roots)
	}
	return found
}
