package mcpserver

import (
	"context"
	"sync"
	"time"

	"github.com/gitgate/gitgate/backends"
	"github.com/mark3labs/mcp-go/mcp"
)

// progressInterval is the minimum gap between two progress notifications;
// git reports progress many times a second.
const progressInterval = 50 * time.Millisecond

// withProgress makes operations that report progress send MCP progress
// notifications, when the client asked for them with a progress token. A
// notification's message is the backend's progress text as it was
// reported, escaped as one line of prose (escapeLine) and redacted; the
// gateway adds nothing to it.
func (s *Server) withProgress(ctx context.Context, op backends.Op, call mcp.CallToolRequest) context.Context {
	info, _ := backends.Info(op)
	if !info.Progress || call.Params.Meta == nil || call.Params.Meta.ProgressToken == nil {
		return ctx
	}
	p := &progress{s: s, ctx: ctx, token: call.Params.Meta.ProgressToken}
	return backends.WithProgress(ctx, p.report)
}

type progress struct {
	s     *Server
	ctx   context.Context
	token mcp.ProgressToken

	mu   sync.Mutex
	n    int
	last time.Time
	msg  string
}

func (p *progress) report(message string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if message == p.msg || time.Since(p.last) < progressInterval {
		return
	}
	p.n++
	p.last, p.msg = time.Now(), message
	err := p.s.mcp.SendNotificationToClient(p.ctx, "notifications/progress", map[string]any{
		"progressToken": p.token,
		"progress":      p.n,
		"message":       p.s.cfg.Redactor.String(escapeLine(message)),
	})
	if err != nil {
		p.s.cfg.Logger.DebugContext(p.ctx, "progress notification not sent", "err", err)
	}
}
