// Package mcpserver is gitgate's MCP endpoint: one tool per operation of the
// backends table, served over Streamable HTTP (with bearer-token
// authentication, Host and Origin checks) and over stdio (as one configured
// agent). Every tool call is authorised against the caller's project,
// recovered from panics, and redacted before anything leaves the process.
//
// # What agents read
//
// A successful call's result has three parts. The structured content is
// the backend's result as JSON, exact (secrets aside: they are redacted
// everywhere): file names, branch names, commit messages and file content
// byte for byte. JSON escapes them; DEL, C1 controls and Unicode format
// characters such as bidi overrides and zero-width characters are written
// as \u escapes too, which decode to the same strings. The readable text
// (the content items) is for a person or a model reading it in a
// terminal: it never carries a raw control, bidi or zero-width character
// from a repository, newlines and tabs of content aside (escape.go).
// Names (paths, branches, workspaces) that contain any such character, a
// '"' or a '\' are shown quoted with Go escapes, like
// "red\x1b[31mALERT.txt" or "invoice\u202etxt.exe"; prose (commit
// subjects, author names, progress messages) is escaped in place; file
// content, diffs, error messages and notices are escaped in place but keep
// their newlines and tabs. The escape forms are those of
// strconv.QuoteRuneToGraphic (\x1b, \r, \a, \u202e, and \xff for a byte
// that is not UTF-8). The readable text of read_file is the file's content
// alone; notices (NOTICE: lines the agent must act on) and paging hints
// are separate items. Backend facts are in the structured content
// (backend, duration_ms, fell_back) and in the result's _meta
// (gitgate/backend, gitgate/duration_ms, gitgate/fell_back); a failed
// call's _meta has gitgate/category.
//
// Reads take no idempotency_key: their input schemas do not offer it, and
// a key sent anyway is accepted and dropped before the call runs (a read
// is safe to retry as it is).
package mcpserver

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"

	"github.com/gitgate/gitgate/backends"
	"github.com/gitgate/gitgate/gateway"
	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"
)

// Redactor removes secrets from text. Its replacements keep JSON text well
// formed, so it is applied to encoded results as well.
type Redactor interface {
	String(s string) string
	Bytes(b []byte) []byte
}

// Config configures a Server.
type Config struct {
	Executor  backends.Executor  // required: normally the gateway's router
	Directory *gateway.Directory // required for HTTP: maps bearer tokens to agents
	Redactor  Redactor           // required: applied to every result and error
	Logger    *slog.Logger       // if nil, slog.Default()
	Version   string             // reported to clients
	HTTP      HTTPConfig         // Streamable HTTP settings
	// Metrics, if set, counts the endpoint's requests (apimetrics.go).
	Metrics *APIMetrics
	// HidePaths are the gateway's own directories (sandboxes, state): no
	// text an agent gets shows them; "<sandbox>" stands in their place
	// (a last net behind the backends, which report relative paths).
	HidePaths []string
}

// Server is the MCP server.
type Server struct {
	cfg Config
	mcp *server.MCPServer

	mu         sync.Mutex
	streamable []*server.StreamableHTTPServer // made by HTTPHandler, stopped by Close
}

// Close ends what the HTTP handlers run in the background (mcp-go's idle
// session sweeper) and their sessions. Call it once the HTTP server that
// serves them has shut down.
func (s *Server) Close(ctx context.Context) {
	s.mu.Lock()
	made := s.streamable
	s.streamable = nil
	s.mu.Unlock()
	for _, h := range made {
		_ = h.Shutdown(ctx) // used as a handler: it has no listener of its own to fail to stop
	}
}

// New builds the server and registers one tool per operation.
func New(cfg Config) (*Server, error) {
	if cfg.Executor == nil || cfg.Redactor == nil {
		return nil, fmt.Errorf("mcpserver: Config needs Executor and Redactor")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	cfg.Redactor = newPathHider(cfg.Redactor, cfg.HidePaths)
	s := &Server{cfg: cfg}
	s.mcp = server.NewMCPServer("gitgate", cfg.Version,
		server.WithToolCapabilities(false),
		server.WithToolHandlerMiddleware(s.countCalls), // outermost: sees what recoverPanics makes of a panic
		server.WithToolHandlerMiddleware(s.recoverPanics),
		server.WithInstructions(instructions),
	)
	for _, t := range tools() {
		s.mcp.AddTool(t.tool, s.handler(t.op))
	}
	return s, nil
}

const instructions = `gitgate runs git for you in a sandbox. Clone a repository into a named workspace, ` +
	`edit files with write_file, commit, and push a branch. Workspaces belong to your project and are ` +
	`kept while in use (they expire after an idle hour). Errors start with a category such as ` +
	`invalid_argument, not_found or conflict. When merge, rebase, cherry_pick, revert or pull stops on ` +
	`conflicts, write_file each conflicted path, mark_resolved them, then continue (or abort); status ` +
	`shows what is in progress. Give a write an idempotency_key (a UUID) and reuse it when you retry ` +
	`that call after a timeout: it is applied at most once. Every result has backend (which backend ` +
	`served it), duration_ms, fell_back, and notices: things you must know besides the result (for ` +
	`example, that your work was restored into a new sandbox).`

// MCP returns the underlying mcp-go server.
func (s *Server) MCP() *server.MCPServer { return s.mcp }

// ErrStopping is the cause a stopping gateway cancels the calls still in
// flight at its drain timeout with (context.WithCancelCause on the HTTP
// server's base context): such a call answers unavailable, telling the
// agent to retry it, not canceled, which would say the agent gave up.
var ErrStopping = errors.New("the gateway is stopping")

// handler returns the tool handler for op: decode the arguments strictly,
// attach the caller's principal, run, render.
func (s *Server) handler(op backends.Op) server.ToolHandlerFunc {
	return func(ctx context.Context, call mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		p, ok := gateway.PrincipalFrom(ctx)
		if !ok {
			return s.errorResult(backends.Errorf(backends.Unauthenticated, "no authenticated agent")), nil
		}
		req := backends.NewRequest(op)
		if err := decodeArgs(call.Params.Arguments, req); err != nil {
			return s.errorResult(err), nil
		}
		req.GetScope().Principal = p
		if op.IsRead() {
			req.GetScope().IdempotencyKey = "" // reads are safe to retry; see the package doc
		}
		ctx = s.withProgress(ctx, op, call)
		res, err := s.cfg.Executor.Execute(ctx, req)
		if err != nil && errors.Is(context.Cause(ctx), ErrStopping) {
			err = backends.WithOp(op, backends.Errorf(backends.Unavailable, "this gateway stopped before the call finished "+
				"(its drain timeout passed); retry the same call (a write with the same idempotency_key is applied at most once), "+
				"or check the workspace (status, log) first: %w", err))
		}
		if err != nil {
			return s.errorResult(err), nil
		}
		return s.successResult(op, res), nil
	}
}

// decodeArgs decodes tool arguments into req, refusing unknown fields (a
// misspelt option must not be silently ignored) and wrong types.
func decodeArgs(args any, req backends.Request) error {
	raw, err := json.Marshal(args)
	if err != nil {
		return backends.Errorf(backends.InvalidArgument, "arguments are not a JSON object")
	}
	if string(raw) == "null" {
		raw = []byte("{}")
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(req); err != nil {
		return backends.Errorf(backends.InvalidArgument, "bad arguments: %v", err)
	}
	return nil
}

// successResult encodes op's result once, redacts the encoded bytes and
// passes them on as they are (with invisible characters as JSON escapes),
// beside the redacted readable text and the backend facts in _meta.
func (s *Server) successResult(op backends.Op, res backends.Result) *mcp.CallToolResult {
	raw, err := json.Marshal(res)
	if err != nil {
		return s.errorResult(backends.Errorf(backends.Internal, "result could not be encoded"))
	}
	structured := json.RawMessage(escapeJSON(s.cfg.Redactor.Bytes(raw)))
	if !json.Valid(structured) {
		return s.errorResult(backends.Errorf(backends.Internal, "result could not be encoded after redaction"))
	}
	out := &mcp.CallToolResult{StructuredContent: structured}
	for _, text := range readable(op, res) {
		out.Content = append(out.Content, mcp.NewTextContent(s.cfg.Redactor.String(text)))
	}
	served := res.GetServed()
	out.Meta = &mcp.Meta{AdditionalFields: map[string]any{
		"gitgate/backend":     s.cfg.Redactor.String(served.Backend),
		"gitgate/duration_ms": served.DurationMS,
		"gitgate/fell_back":   served.FellBack,
	}}
	return out
}

// errorResult renders an error as a tool error ("category: message", the
// message escaped as readable text), with the category also in _meta for
// programs.
func (s *Server) errorResult(err error) *mcp.CallToolResult {
	cat := backends.CategoryOf(err)
	msg := s.cfg.Redactor.String(fmt.Sprintf("%s: %s", cat, escapeText(backends.MessageOf(err))))
	res := mcp.NewToolResultError(msg)
	res.Meta = &mcp.Meta{AdditionalFields: map[string]any{"gitgate/category": string(cat)}}
	return res
}

// recoverPanics turns a panic in a handler into an internal error result
// and a log line; the client never sees the panic value.
func (s *Server) recoverPanics(next server.ToolHandlerFunc) server.ToolHandlerFunc {
	return func(ctx context.Context, call mcp.CallToolRequest) (res *mcp.CallToolResult, err error) {
		defer func() {
			if p := recover(); p != nil {
				s.cfg.Logger.ErrorContext(ctx, "tool handler panicked", "tool", call.Params.Name, "panic", s.cfg.Redactor.String(fmt.Sprint(p)))
				res, err = s.errorResult(backends.Errorf(backends.Internal, "internal error")), nil
			}
		}()
		return next(ctx, call)
	}
}
