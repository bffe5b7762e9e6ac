package backendtest

import (
	"encoding/base64"
	"fmt"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/gitgate/gitgate/backends"
)

// MaxFileBytes is the write_file limit every backend under test must
// enforce: the documented default of limits.max_file_bytes, 10 MiB.
const MaxFileBytes = 10 << 20

// MaxFileMessage is what a write_file above MaxFileBytes is answered with,
// on every backend.
var MaxFileMessage = fmt.Sprintf("content is larger than the %d-byte limit", MaxFileBytes)

// testSizeLimits: write_file takes content of exactly the limit, as text
// and as base64, and refuses one byte more (and far more) as
// resource_exhausted with the same message, changing nothing; a read of
// the large file is capped by the server and says where to go on. Sampled,
// the base64 write at the limit and the larger refusals are left out (each
// is a megabytes-long request through the whole path). make test runs
// this subtest without -race (NORACE_TESTS in the Makefile): under -race it
// is mostly the detector's bookkeeping of 10 MiB copies.
func testSizeLimits(t *testing.T, f Factory, o options) {
	env := NewEnv(t)
	ex := f(t, env)
	Clone(t, ex, env, env.Agent, "limits")
	text := strings.Repeat("x", MaxFileBytes)
	bin := make([]byte, MaxFileBytes+1)
	for i := range bin {
		bin[i] = byte(i * 7)
	}
	atLimit := []*backends.WriteFileRequest{
		{Scope: scope("limits"), Path: "at-limit.txt", Content: text},
		{Scope: scope("limits"), Path: "at-limit.bin", Content: base64.StdEncoding.EncodeToString(bin[:MaxFileBytes]), Encoding: "base64"},
	}
	if o.sampled {
		atLimit = atLimit[:1]
	}
	for _, w := range atLimit {
		res := Do[*backends.WriteFileResult](t, ex, env.Agent, w)
		if res.Size != MaxFileBytes || !res.Created {
			t.Fatalf("write_file of %s at the limit: %+v", w.Path, res)
		}
	}
	r := Do[*backends.ReadFileResult](t, ex, env.Agent, &backends.ReadFileRequest{Scope: scope("limits"), Path: "at-limit.txt"})
	if r.Size != MaxFileBytes || !r.Truncated || r.Content == "" || len(r.Content) >= MaxFileBytes ||
		r.NextOffset != len(r.Content) || strings.Trim(r.Content, "x") != "" {
		t.Fatalf("read of a file above the output cap: size %d, truncated %v, next %d, %d bytes", r.Size, r.Truncated, r.NextOffset, len(r.Content))
	}
	before := snapshotWS(t, ex, env, "limits")
	type overCase struct {
		name string
		req  *backends.WriteFileRequest
	}
	over := []overCase{
		{"one byte over", &backends.WriteFileRequest{Path: "over.txt", Content: text + "x"}},
		{"overwrite one byte over", &backends.WriteFileRequest{Path: "at-limit.txt", Content: text + "y"}},
		{"one byte over, base64", &backends.WriteFileRequest{Path: "over.bin", Content: base64.StdEncoding.EncodeToString(bin), Encoding: "base64"}},
		{"twice the limit", &backends.WriteFileRequest{Path: "over.txt", Content: text + text}},
	}
	if o.sampled {
		over = over[:2]
	}
	for _, c := range over {
		c.req.Scope = scope("limits")
		err := Fail(t, ex, env.Agent, c.req)
		if backends.CategoryOf(err) != backends.ResourceExhausted || backends.MessageOf(err) != MaxFileMessage {
			t.Errorf("write_file %s: %v; want resource_exhausted: %s", c.name, err, MaxFileMessage)
		}
	}
	if after := snapshotWS(t, ex, env, "limits"); after != before {
		t.Fatalf("a refused write changed the workspace:\nbefore %s\nafter  %s", before, after)
	}
}

// testPaging: read_file, diff, log and list_files pages join up exactly to
// the whole output; each page but the last says truncated and where the
// next starts (next_offset, next_skip), and no page cuts a character.
func testPaging(t *testing.T, f Factory) {
	env := NewEnv(t)
	ex := f(t, env)
	Clone(t, ex, env, env.Agent, "paging")
	// Eight lines of 32 bytes in pages of 7: where a page starts within a
	// line (32 places, so at most 32 pages) decides where the next starts,
	// so every start and every cut the pages can make is met in the first
	// seven lines. More lines only repeat them, one call per page (30 lines
	// took 150 calls: minutes on E2B under -race).
	text := strings.Repeat("héllo wörld — ✓ 日本語\n", 8)
	Do[*backends.WriteFileResult](t, ex, env.Agent, &backends.WriteFileRequest{Scope: scope("paging"), Path: "p/text.txt", Content: text})

	var got strings.Builder
	for offset, i := 0, 0; ; i++ {
		r := Do[*backends.ReadFileResult](t, ex, env.Agent, &backends.ReadFileRequest{Scope: scope("paging"), Path: "p/text.txt", Page: backends.Page{Offset: offset, Limit: 7}})
		if r.Size != int64(len(text)) || r.Encoding != "utf-8" || !utf8.ValidString(r.Content) || len(r.Content) > 7 {
			t.Fatalf("read_file page at %d: %+v", offset, r)
		}
		got.WriteString(r.Content)
		if !r.Truncated {
			if r.NextOffset != 0 || offset+len(r.Content) != len(text) {
				t.Fatalf("last read_file page at %d: %+v", offset, r)
			}
			break
		}
		if r.Content == "" || r.NextOffset != offset+len(r.Content) || i > len(text) {
			t.Fatalf("read_file page at %d does not lead on: %+v", offset, r)
		}
		offset = r.NextOffset
	}
	if got.String() != text {
		t.Fatalf("read_file pages join to %q, want %q", got.String(), text)
	}
	end := Do[*backends.ReadFileResult](t, ex, env.Agent, &backends.ReadFileRequest{Scope: scope("paging"), Path: "p/text.txt", Page: backends.Page{Offset: len(text)}})
	if end.Content != "" || end.Truncated {
		t.Fatalf("read_file at the end: %+v", end)
	}

	for i := range 5 {
		Do[*backends.WriteFileResult](t, ex, env.Agent, &backends.WriteFileRequest{Scope: scope("paging"), Path: fmt.Sprintf("p/%d.txt", i), Content: fmt.Sprintf("%d\n", i)})
		Do[*backends.CommitResult](t, ex, env.Agent, &backends.CommitRequest{Scope: scope("paging"), Message: fmt.Sprintf("page %d", i)})
	}
	testLogPaging(t, ex, env)

	Do[*backends.WriteFileResult](t, ex, env.Agent, &backends.WriteFileRequest{Scope: scope("paging"), Path: "README.md", Content: "# demo\n\nChanged — ünïcode ✓.\n" + strings.Repeat("line\n", 20)})
	Do[*backends.WriteFileResult](t, ex, env.Agent, &backends.WriteFileRequest{Scope: scope("paging"), Path: "p/0.txt", Content: "zero ✓\n"})
	full := Do[*backends.DiffResult](t, ex, env.Agent, &backends.DiffRequest{Scope: scope("paging")})
	if full.Truncated || !strings.Contains(full.Diff, "+zero ✓") {
		t.Fatalf("whole diff: %+v", full)
	}
	got.Reset()
	for offset, i := 0, 0; ; i++ {
		page := Do[*backends.DiffResult](t, ex, env.Agent, &backends.DiffRequest{Scope: scope("paging"), Page: backends.Page{Offset: offset, Limit: 30}})
		if !utf8.ValidString(page.Diff) || len(page.Diff) > 30 {
			t.Fatalf("diff page at %d: %+v", offset, page)
		}
		got.WriteString(page.Diff)
		if !page.Truncated {
			break
		}
		if page.Diff == "" || page.NextOffset != offset+len(page.Diff) || i > len(full.Diff) {
			t.Fatalf("diff page at %d does not lead on: %+v", offset, page)
		}
		offset = page.NextOffset
	}
	if got.String() != full.Diff {
		t.Fatalf("diff pages join to\n%q\nwant\n%q", got.String(), full.Diff)
	}

	all := Do[*backends.ListFilesResult](t, ex, env.Agent, &backends.ListFilesRequest{Scope: scope("paging"), Recursive: true})
	var listed []string
	for offset, i := 0, 0; ; i++ {
		page := Do[*backends.ListFilesResult](t, ex, env.Agent, &backends.ListFilesRequest{Scope: scope("paging"), Recursive: true, Page: backends.Page{Offset: offset, Limit: 2}})
		for _, e := range page.Entries {
			listed = append(listed, e.Path)
		}
		if !page.Truncated {
			break
		}
		if len(page.Entries) != 2 || page.NextOffset != offset+2 || i > len(all.Entries) {
			t.Fatalf("list_files page at %d: %+v", offset, page)
		}
		offset = page.NextOffset
	}
	var want []string
	for _, e := range all.Entries {
		want = append(want, e.Path)
	}
	if all.Truncated || !slices.Equal(listed, want) {
		t.Fatalf("list_files pages join to %v, want %v", listed, want)
	}
}

// testLogPaging: log pages of two, following next_skip, join to the whole
// history; a limit above the cap is capped, not refused.
func testLogPaging(t *testing.T, ex backends.Executor, env *Env) {
	full := Do[*backends.LogResult](t, ex, env.Agent, &backends.LogRequest{Scope: scope("paging"), Limit: 500})
	if full.Truncated || len(full.Commits) != 6 {
		t.Fatalf("whole log: %d commits, truncated %v; want 6", len(full.Commits), full.Truncated)
	}
	var paged []string
	for skip, i := 0, 0; ; i++ {
		lg := Do[*backends.LogResult](t, ex, env.Agent, &backends.LogRequest{Scope: scope("paging"), Limit: 2, Skip: skip})
		for _, c := range lg.Commits {
			paged = append(paged, c.SHA)
		}
		if !lg.Truncated {
			if lg.NextSkip != 0 {
				t.Fatalf("last log page at %d: %+v", skip, lg)
			}
			break
		}
		if len(lg.Commits) != 2 || lg.NextSkip != skip+2 || i > 10 {
			t.Fatalf("log page at %d does not lead on: truncated %v, next_skip %d, %d commits", skip, lg.Truncated, lg.NextSkip, len(lg.Commits))
		}
		skip = lg.NextSkip
	}
	var want []string
	for _, c := range full.Commits {
		want = append(want, c.SHA)
	}
	if !slices.Equal(paged, want) {
		t.Fatalf("log pages join to %v, want %v", paged, want)
	}
}
