package mcpserver

import (
	"context"
	"net/http"
	"sync"

	"github.com/gitgate/gitgate/backends"
	"github.com/gitgate/gitgate/internal/promreg"
	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"
	"github.com/prometheus/client_golang/prometheus"
)

// Transport is how an agent reached the MCP endpoint: the transport label
// of gitgate_api_requests_total.
type Transport string

// The transports.
const (
	TransportHTTP  Transport = "http"
	TransportStdio Transport = "stdio"
)

// Class is the outcome of a request to the endpoint, for its availability
// SLI: the class label of gitgate_api_requests_total.
type Class string

// The classes. ok/(all) is the success ratio; server_error is what the
// availability objective counts against the endpoint.
const (
	ClassOK          Class = "ok"
	ClassClientError Class = "client_error"
	ClassServerError Class = "server_error"
)

// ClassOf classes a tool error by its category. The agent's mistakes and
// limits the configuration sets are client errors: invalid_argument,
// forbidden, unauthenticated, not_found, conflict, canceled (the caller
// gave up), resource_exhausted (too big, too many, or a spent budget: an
// operator's limit, not an outage). What gitgate or its dependencies
// failed to do is a server error: unavailable, timeout, rate_limited (a
// dependency's cap) and internal.
func ClassOf(c backends.Category) Class {
	switch {
	case c == "":
		return ClassOK
	case c.IsClientMistake(), c == backends.ResourceExhausted:
		return ClassClientError
	default:
		return ClassServerError
	}
}

// worse is the more severe of two classes (a batch of calls in one HTTP
// request takes its worst).
func worse(a, b Class) Class {
	rank := map[Class]int{ClassOK: 0, ClassClientError: 1, ClassServerError: 2}
	if rank[b] > rank[a] {
		return b
	}
	return a
}

// APIMetrics counts the endpoint's requests by transport and class: over
// HTTP every request to the MCP path (authentication refusals and other
// 4xx are client errors, 5xx and panics server errors, and a tools/call
// answered with a tool error takes its category's class); over stdio
// every tool call.
type APIMetrics struct {
	requests *prometheus.CounterVec
}

// NewAPIMetrics registers the endpoint's metrics with reg (if not nil;
// once per registry: servers built on one registry count together); every
// series starts at zero.
func NewAPIMetrics(reg prometheus.Registerer) *APIMetrics {
	m := &APIMetrics{requests: promreg.Register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "gitgate_api_requests_total", Help: "Requests to the MCP endpoint, by transport (http: every request; stdio: every tool call) and class (ok, client_error, server_error): the endpoint's availability SLI.",
	}, []string{"transport", "class"}))}
	for _, t := range []Transport{TransportHTTP, TransportStdio} {
		for _, c := range []Class{ClassOK, ClassClientError, ClassServerError} {
			m.requests.WithLabelValues(string(t), string(c))
		}
	}
	return m
}

func (m *APIMetrics) count(t Transport, c Class) {
	if m != nil {
		m.requests.WithLabelValues(string(t), string(c)).Inc()
	}
}

// requestClass collects, over one HTTP request, the classes of the tool
// calls it carried.
type requestClass struct {
	mu    sync.Mutex
	class Class
}

func (r *requestClass) add(c Class) {
	r.mu.Lock()
	r.class = worse(r.class, c)
	r.mu.Unlock()
}

type requestClassKey struct{}
type stdioKey struct{}

// countCalls is the outermost tool middleware: it classes every tool
// call's result (its category in _meta, see errorResult) and hands the
// class to the HTTP request that carried it, or counts it as a stdio
// request.
func (s *Server) countCalls(next server.ToolHandlerFunc) server.ToolHandlerFunc {
	return func(ctx context.Context, call mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		res, err := next(ctx, call)
		class := ClassOK
		switch {
		case err != nil:
			class = ClassServerError
		case res != nil && res.IsError:
			class = ClassServerError // an error result without a category is gitgate's fault
			if res.Meta != nil {
				if c, ok := res.Meta.AdditionalFields["gitgate/category"].(string); ok {
					class = ClassOf(backends.Category(c))
				}
			}
		}
		if rc, ok := ctx.Value(requestClassKey{}).(*requestClass); ok {
			rc.add(class)
		} else if ctx.Value(stdioKey{}) != nil {
			s.cfg.Metrics.count(TransportStdio, class)
		}
		return res, err
	}
}

// countHTTP counts every request next serves: by its status (4xx client,
// 5xx or a panic server), else by the worst class of the tool calls it
// carried.
func (s *Server) countHTTP(next http.Handler) http.Handler {
	if s.cfg.Metrics == nil {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rc := &requestClass{class: ClassOK}
		sw := &statusWriter{ResponseWriter: w}
		defer func() {
			if p := recover(); p != nil {
				s.cfg.Metrics.count(TransportHTTP, ClassServerError)
				panic(p)
			}
			class := rc.class
			switch {
			case sw.status >= 500:
				class = ClassServerError
			case sw.status >= 400:
				class = worse(class, ClassClientError)
			}
			s.cfg.Metrics.count(TransportHTTP, class)
		}()
		next.ServeHTTP(sw, r.WithContext(context.WithValue(r.Context(), requestClassKey{}, rc)))
	})
}

// statusWriter records the status of a response; it keeps Flush (the
// Streamable HTTP transport streams events) and Unwrap (for
// http.ResponseController).
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
