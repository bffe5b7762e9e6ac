package mcpserver

import (
	"context"
	"io"

	"github.com/gitgate/gitgate/gateway"
	"github.com/mark3labs/mcp-go/server"
)

// ServeStdio serves MCP over in and out as one agent (the process was
// started by that agent's runtime, so the credential is the configuration)
// until ctx ends or in is closed.
func (s *Server) ServeStdio(ctx context.Context, agent gateway.Agent, in io.Reader, out io.Writer) error {
	stdio := server.NewStdioServer(s.mcp)
	stdio.SetContextFunc(func(ctx context.Context) context.Context {
		ctx = context.WithValue(ctx, stdioKey{}, true) // its tool calls count as stdio requests (apimetrics.go)
		return gateway.WithPrincipal(ctx, agent.Principal())
	})
	return stdio.Listen(ctx, in, out)
}
