package mcpserver

import (
	"context"
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/gitgate/gitgate/backends"
	"github.com/mark3labs/mcp-go/mcp"
)

// opResult is one result of an operation.
type opResult struct {
	op  backends.Op
	res backends.Result
}

// allResults is one zero result of every operation of the table (that
// has its types), and the other shapes of pull and push results.
func allResults() []opResult {
	var out []opResult
	for _, info := range backends.Ops() {
		if res := backends.NewResult(info.Op); res != nil {
			out = append(out, opResult{info.Op, res})
		}
	}
	return append(out,
		opResult{backends.OpPull, &backends.PullResult{Updated: true}}, opResult{backends.OpPull, &backends.PullResult{Updated: true, Merged: true}},
		opResult{backends.OpPush, &backends.PushResult{Created: true}}, opResult{backends.OpPush, &backends.PushResult{UpToDate: true}})
}

// fill sets every string of v (a pointer to a struct), in nested structs
// and in one element of every slice, to s.
func fill(v reflect.Value, s string) {
	switch v.Kind() {
	case reflect.Pointer:
		fill(v.Elem(), s)
	case reflect.Struct:
		for i := range v.NumField() {
			if v.Type().Field(i).IsExported() {
				fill(v.Field(i), s)
			}
		}
	case reflect.Slice:
		v.Set(reflect.MakeSlice(v.Type(), 1, 1))
		fill(v.Index(0), s)
	case reflect.String:
		v.SetString(s)
	}
}

// TestReadableTextOfEveryResultIsSafe: with every string of every result
// type set to a hostile string, no readable text carries a raw control,
// bidi or zero-width character; only file content and diffs keep their
// newlines and tabs; the structured content decodes to the exact strings.
func TestReadableTextOfEveryResultIsSafe(t *testing.T) {
	for _, r := range allResults() {
		res := r.res
		fill(reflect.ValueOf(res), hostile)
		name := reflect.TypeOf(res).Elem().Name()
		s := newTestServer(t, func(context.Context, backends.Request) (backends.Result, error) { return res, nil }, &strings.Builder{})
		out := s.successResult(r.op, res)
		items := contentTexts(t, out)
		if len(items) < 2 || !strings.HasPrefix(items[0], "NOTICE: ") {
			t.Fatalf("%s: want the notice as the first of several items, got %q", name, items)
		}
		for i, text := range items {
			if bad := unsafe(text, true); len(bad) > 0 {
				t.Errorf("%s: item %d has %v:\n%q", name, i, bad, text)
			}
			// The renderer's own lines and columns are layout; the
			// repository's newline and tab (hostile's "\nF\tG") are layout
			// only in file content, diffs and notices.
			content := i == 0 || (i == 1 && (name == "DiffResult" || name == "ReadFileResult" || name == "ShowResult"))
			if raw := strings.Contains(text, "\nF") || strings.Contains(text, "F\tG"); raw != content {
				t.Errorf("%s: item %d keeps the repository's newline and tab: %v, want %v:\n%q", name, i, raw, content, text)
			}
			if strings.Contains(text, "served by") {
				t.Errorf("%s: item %d has a backend footer: %q", name, i, text)
			}
		}
		if name == "ReadFileResult" || name == "DiffResult" || name == "ShowResult" {
			if want := escapeText(hostile); items[1] != want {
				t.Errorf("%s: content item %q, want exactly %q", name, items[1], want)
			}
		}
		structured, _ := out.StructuredContent.(json.RawMessage)
		if bad := unsafe(string(structured), false); len(bad) > 0 {
			t.Errorf("%s: structured JSON text has %v", name, bad)
		}
		var back map[string]any
		if err := json.Unmarshal(structured, &back); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if !strings.Contains(fmtJSON(back), strings.ToValidUTF8(hostile, "\ufffd")) {
			t.Errorf("%s: structured content lost the exact string: %v", name, back)
		}
	}
}

// fmtJSON returns every string in v, joined.
func fmtJSON(v any) string {
	switch v := v.(type) {
	case string:
		return v + "\x00"
	case map[string]any:
		var b strings.Builder
		for _, e := range v {
			b.WriteString(fmtJSON(e))
		}
		return b.String()
	case []any:
		var b strings.Builder
		for _, e := range v {
			b.WriteString(fmtJSON(e))
		}
		return b.String()
	}
	return ""
}

// contentTexts returns the texts of res's content items, which must all be
// text.
func contentTexts(t *testing.T, res *mcp.CallToolResult) []string {
	t.Helper()
	var texts []string
	for _, c := range res.Content {
		tc, ok := c.(mcp.TextContent)
		if !ok {
			t.Fatalf("content item %T, want text", c)
		}
		texts = append(texts, tc.Text)
	}
	return texts
}
