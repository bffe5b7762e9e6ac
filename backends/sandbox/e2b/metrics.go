package e2b

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"time"

	"github.com/gitgate/gitgate/backends"
	"github.com/gitgate/gitgate/backends/recovery"
	"github.com/gitgate/gitgate/backends/sandbox"
	"github.com/gitgate/gitgate/internal/promreg"
	"github.com/prometheus/client_golang/prometheus"
)

// apiKind is which E2B API a request went to: the api label of
// gitgate_e2b_requests_total.
type apiKind string

const (
	apiControl apiKind = "control" // the control plane (api.go)
	apiEnvd    apiKind = "envd"    // the daemon in each sandbox (envd.go)
)

// call is what a request did: the bounded call label of the E2B request
// metrics (never a sandbox id, path or URL).
type call string

// The calls, control plane then envd.
const (
	callCreate        call = "create"
	callGet           call = "get"
	callList          call = "list"
	callSetTimeout    call = "set_timeout"
	callConnect       call = "connect"
	callKill          call = "kill"
	callProcess       call = "process"        // process.Process/Start (a command's stream, to its first answer)
	callSignal        call = "signal"         // process.Process/SendSignal
	callListProcesses call = "list_processes" // process.Process/List
	callReadFile      call = "read_file"      // GET /files
	callWriteFile     call = "write_file"     // POST /files
	callMetrics       call = "metrics"        // GET /metrics
)

// requestMetrics are the E2B dependency's health: every request (each
// attempt of a retried one) by API and call, its outcome and latency.
// One set per registry, shared by the API client and the provider.
type requestMetrics struct {
	total    *prometheus.CounterVec
	duration *prometheus.HistogramVec
	recovery *recovery.Metrics
}

func newRequestMetrics(reg prometheus.Registerer) *requestMetrics {
	m := &requestMetrics{
		total: promreg.Register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gitgate_e2b_requests_total", Help: "Requests to E2B (each attempt), by API (control or envd), call and outcome (ok, error, rate_limited).",
		}, []string{"api", "call", "outcome"})),
		duration: promreg.Register(reg, prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "gitgate_e2b_request_duration_seconds", Help: "Latency of requests to E2B, by API and call (a command's stream: to envd's first answer).",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"api", "call"})),
		recovery: recovery.NewMetrics(reg),
	}
	return m
}

// observe records one request that took d and ended with err.
func (m *requestMetrics) observe(api apiKind, c call, d time.Duration, err error) {
	if m == nil {
		return
	}
	outcome := "ok"
	switch {
	case err == nil:
	case backends.CategoryOf(err) == backends.RateLimited:
		outcome = "rate_limited"
	default:
		outcome = "error"
	}
	m.total.WithLabelValues(string(api), string(c), outcome).Inc()
	m.duration.WithLabelValues(string(api), string(c)).Observe(d.Seconds())
}

// HostMetrics is what envd's GET /metrics answers: the sandbox's CPU,
// memory and disk. The JSON names are envd's own, from e2b-dev/infra
// packages/envd/internal/host/metrics.go (type Metrics, served by
// API.GetMetrics in packages/envd/internal/api/init.go); mem_total_mib
// and mem_used_mib, deprecated there, are not read.
type HostMetrics struct {
	Timestamp      int64   `json:"ts"`           // Unix time, seconds
	CPUCount       uint32  `json:"cpu_count"`    // cores
	CPUUsedPercent float32 `json:"cpu_used_pct"` // 0 to 100, over all cores
	MemTotal       uint64  `json:"mem_total"`    // bytes
	MemUsed        uint64  `json:"mem_used"`     // bytes
	DiskUsed       uint64  `json:"disk_used"`    // bytes
	DiskTotal      uint64  `json:"disk_total"`   // bytes
}

// Metrics asks envd for the sandbox's resource use (GET /metrics).
func (e *Envd) Metrics(ctx context.Context) (HostMetrics, error) {
	req, err := e.newRequest(ctx, http.MethodGet, "/metrics", nil, nil)
	if err != nil {
		return HostMetrics{}, err
	}
	resp, err := e.do(req, callMetrics)
	if err != nil {
		return HostMetrics{}, transportError(ctx, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return HostMetrics{}, envdHTTPError(resp)
	}
	var out HostMetrics
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&out); err != nil {
		return HostMetrics{}, backends.Errorf(backends.Internal, "e2b: envd /metrics: unexpected answer: %v", err)
	}
	return out, nil
}

// do sends req to envd and records it as call c: an answer with an error
// status counts as an error (429 as rate limited), as does no answer.
func (e *Envd) do(req *http.Request, c call) (*http.Response, error) {
	start := time.Now()
	resp, err := e.client().Do(req)
	if e.metrics != nil {
		var failed error
		switch {
		case err != nil:
			failed = err
		case resp.StatusCode == http.StatusTooManyRequests:
			failed = backends.Errorf(backends.RateLimited, "e2b: envd: 429")
		case resp.StatusCode >= 400:
			failed = backends.Errorf(backends.Unavailable, "e2b: envd: %d", resp.StatusCode)
		}
		e.metrics.observe(apiEnvd, c, time.Since(start), failed)
	}
	return resp, err
}

// Usage implements sandbox.UsageReader from envd's /metrics.
func (p *Provider) Usage(ctx context.Context, id string) (sandbox.Usage, error) {
	k, err := p.lookup(ctx, id)
	if err != nil {
		return sandbox.Usage{}, err
	}
	m, err := p.envd(k).Metrics(ctx)
	if err != nil {
		return sandbox.Usage{}, err
	}
	return sandbox.Usage{CPU: float64(m.CPUUsedPercent) / 100, MemUsed: m.MemUsed, MemTotal: m.MemTotal}, nil
}

var _ sandbox.UsageReader = (*Provider)(nil)
