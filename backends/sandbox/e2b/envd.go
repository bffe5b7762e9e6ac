package e2b

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/gitgate/gitgate/backends"
	"github.com/gitgate/gitgate/backends/sandbox"
)

// The Connect protocol's streaming framing is written by hand: one
// request envelope (flag byte, 4-byte big-endian length, JSON message),
// then response envelopes until one with flag 0x02 ends the stream. It is
// a few dozen lines, where generated connect-go stubs would need envd's
// protos, protoc plugins and connectrpc.com/connect for three messages.

// envdPort is envd's port behind the E2B proxy.
const envdPort = "49983"

// ErrSandboxGone marks errors that say the sandbox itself is gone (the
// proxy answers 502): the caller should replace it.
var ErrSandboxGone = sandbox.ErrGone

// Envd is a client of one sandbox's envd, through the shared-host proxy.
type Envd struct {
	// BaseURL is the proxy, e.g. "https://sandbox.e2b.app". Required.
	BaseURL string
	// SandboxID is the sandbox. Required.
	SandboxID string
	// AccessToken is the sandbox's envdAccessToken ("" when not secure).
	AccessToken string
	// User runs the commands (Basic auth, empty password); "" is envd's
	// default user.
	User string
	// HTTP is the client. If nil, http.DefaultClient (streams are long:
	// no overall timeout).
	HTTP *http.Client
	// Keepalive asks envd for keepalive events while a command is silent;
	// a stream silent for three times as long is given up. If zero, 50 s.
	Keepalive time.Duration
}

// ExecRequest is one command.
type ExecRequest struct {
	Cmd  string
	Args []string
	Env  map[string]string
	Cwd  string
	// Timeout is the command's deadline, enforced by envd (which kills it).
	Timeout time.Duration
	// MaxOutput caps the bytes kept of stdout and of stderr each. 0: 1 MiB.
	MaxOutput int
	// OnStderr receives stderr as it arrives.
	OnStderr func([]byte)
}

// ExecResult is a finished command.
type ExecResult struct {
	Stdout, Stderr                   []byte
	ExitCode                         int
	StdoutTruncated, StderrTruncated bool
	StdoutTotalBytes                 int64
}

func (e *Envd) client() *http.Client {
	if e.HTTP != nil {
		return e.HTTP
	}
	return http.DefaultClient
}

func (e *Envd) newRequest(ctx context.Context, method, path string, q url.Values, body io.Reader) (*http.Request, error) {
	u := strings.TrimRight(e.BaseURL, "/") + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return nil, backends.Errorf(backends.Internal, "e2b: %w", err)
	}
	req.Header.Set("E2b-Sandbox-Id", e.SandboxID)
	req.Header.Set("E2b-Sandbox-Port", envdPort)
	if e.AccessToken != "" {
		req.Header.Set("X-Access-Token", e.AccessToken)
	}
	if e.User != "" && path != "/files" {
		req.Header.Set("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(e.User+":")))
	}
	return req, nil
}

// Run runs a command and waits for it. A non-zero exit is a result, not an
// error; errors carry a category, and ErrSandboxGone when the sandbox is.
func (e *Envd) Run(ctx context.Context, r ExecRequest) (ExecResult, error) {
	msg := map[string]any{"process": map[string]any{"cmd": r.Cmd, "args": nonNil(r.Args), "envs": r.Env, "cwd": r.Cwd}, "stdin": false}
	payload, err := json.Marshal(msg)
	if err != nil {
		return ExecResult{}, backends.Errorf(backends.Internal, "e2b: encode the command: %w", err)
	}
	frame := make([]byte, 5+len(payload))
	binary.BigEndian.PutUint32(frame[1:5], uint32(len(payload)))
	copy(frame[5:], payload)
	keepalive := e.Keepalive
	if keepalive <= 0 {
		keepalive = 50 * time.Second
	}
	if r.Timeout > 0 {
		// envd enforces the deadline; this catches an envd too slow to
		// even start, or a stream that stalls past it.
		var cancelDeadline context.CancelFunc
		ctx, cancelDeadline = context.WithTimeout(ctx, r.Timeout+max(time.Second, r.Timeout/4))
		defer cancelDeadline()
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	req, err := e.newRequest(ctx, http.MethodPost, "/process.Process/Start", nil, bytes.NewReader(frame))
	if err != nil {
		return ExecResult{}, err
	}
	req.Header.Set("Content-Type", "application/connect+json")
	req.Header.Set("Connect-Protocol-Version", "1")
	req.Header.Set("Keepalive-Ping-Interval", strconv.Itoa(max(1, int(keepalive/time.Second))))
	if r.Timeout > 0 {
		req.Header.Set("Connect-Timeout-Ms", strconv.FormatInt(r.Timeout.Milliseconds(), 10))
	}
	resp, err := e.client().Do(req)
	if err != nil {
		return ExecResult{}, transportError(ctx, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return ExecResult{}, envdHTTPError(resp)
	}
	// A stream silent for three keepalive intervals is dead.
	silence := time.AfterFunc(3*keepalive, func() { cancel(errSilent) })
	defer silence.Stop()
	return readProcessStream(ctx, bufio.NewReader(resp.Body), r, func() { silence.Reset(3 * keepalive) })
}

var errSilent = errors.New("envd sent nothing for three keepalive intervals")

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

type processEvent struct {
	Event struct {
		Start *struct {
			Pid uint32 `json:"pid"`
		} `json:"start"`
		Data *struct {
			Stdout []byte `json:"stdout"`
			Stderr []byte `json:"stderr"`
		} `json:"data"`
		End *struct {
			ExitCode int    `json:"exitCode"`
			Exited   bool   `json:"exited"`
			Status   string `json:"status"`
			Error    string `json:"error"`
		} `json:"end"`
		Keepalive *struct{} `json:"keepalive"`
	} `json:"event"`
}

// endOfStream is the final envelope's message.
type endOfStream struct {
	Error *struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

func readProcessStream(ctx context.Context, body *bufio.Reader, r ExecRequest, heard func()) (ExecResult, error) {
	limit := r.MaxOutput
	if limit <= 0 {
		limit = 1 << 20
	}
	var res ExecResult
	var stdout, stderr bytes.Buffer
	ended := false
	for {
		flags, msg, err := readEnvelope(body)
		if err != nil {
			if cause := context.Cause(ctx); cause != nil && ctx.Err() != nil {
				return res, transportError(ctx, cause)
			}
			return res, backends.Errorf(backends.Unavailable, "e2b: the command's stream was cut before its end (it may have run): %v", err)
		}
		heard()
		if flags&0x02 != 0 {
			var eos endOfStream
			if err := json.Unmarshal(msg, &eos); err != nil {
				return res, backends.Errorf(backends.Internal, "e2b: unreadable end of stream: %v", err)
			}
			if eos.Error != nil {
				return res, connectError(eos.Error.Code, eos.Error.Message)
			}
			if !ended {
				return res, backends.Errorf(backends.Unavailable, "e2b: the command's stream ended without its result")
			}
			res.Stdout, res.Stderr = stdout.Bytes(), stderr.Bytes()
			return res, nil
		}
		var ev processEvent
		if err := json.Unmarshal(msg, &ev); err != nil {
			return res, backends.Errorf(backends.Internal, "e2b: unreadable process event: %v", err)
		}
		switch {
		case ev.Event.Data != nil:
			if d := ev.Event.Data.Stdout; len(d) > 0 {
				res.StdoutTotalBytes += int64(len(d))
				res.StdoutTruncated = keep(&stdout, d, limit) || res.StdoutTruncated
			}
			if d := ev.Event.Data.Stderr; len(d) > 0 {
				if r.OnStderr != nil {
					r.OnStderr(d)
				}
				res.StderrTruncated = keep(&stderr, d, limit) || res.StderrTruncated
			}
		case ev.Event.End != nil:
			ended = true
			res.ExitCode = ev.Event.End.ExitCode
			if !ev.Event.End.Exited && res.ExitCode == 0 {
				res.ExitCode = -1 // killed by a signal
			}
		}
	}
}

// keep appends what fits under limit and reports whether anything was cut.
func keep(buf *bytes.Buffer, d []byte, limit int) bool {
	room := limit - buf.Len()
	if room >= len(d) {
		buf.Write(d)
		return false
	}
	if room > 0 {
		buf.Write(d[:room])
	}
	return true
}

// readEnvelope reads one Connect envelope.
func readEnvelope(r io.Reader) (byte, []byte, error) {
	var head [5]byte
	if _, err := io.ReadFull(r, head[:]); err != nil {
		return 0, nil, err
	}
	n := binary.BigEndian.Uint32(head[1:])
	if n > 64<<20 {
		return 0, nil, fmt.Errorf("envelope of %d bytes", n)
	}
	msg := make([]byte, n)
	if _, err := io.ReadFull(r, msg); err != nil {
		return 0, nil, err
	}
	return head[0], msg, nil
}

// connectError maps a Connect error code to a category.
func connectError(code, msg string) error {
	cat := backends.Internal
	switch code {
	case "deadline_exceeded":
		cat = backends.Timeout
	case "unauthenticated":
		cat = backends.Unauthenticated
	case "permission_denied":
		cat = backends.Forbidden
	case "invalid_argument", "failed_precondition", "out_of_range":
		cat = backends.InvalidArgument
	case "not_found":
		cat = backends.NotFound
	case "already_exists", "aborted":
		cat = backends.Conflict
	case "resource_exhausted":
		cat = backends.ResourceExhausted
	case "unavailable", "canceled":
		cat = backends.Unavailable
	}
	return backends.Errorf(cat, "e2b: envd: %s: %s", code, msg)
}

// envdHTTPError maps an HTTP error answer from the proxy or envd.
func envdHTTPError(resp *http.Response) error {
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	var e struct {
		Code    json.RawMessage `json:"code"`
		Message string          `json:"message"`
	}
	_ = json.Unmarshal(data, &e)
	if resp.StatusCode == http.StatusBadGateway {
		return fmt.Errorf("%w: %w", ErrSandboxGone, backends.Errorf(backends.Unavailable, "e2b: the sandbox is not running (502)"))
	}
	var code string
	if json.Unmarshal(e.Code, &code) == nil && code != "" {
		return connectError(code, e.Message) // a unary Connect error
	}
	return apiError(resp.Request.Method, resp.Request.URL.Path, resp.StatusCode, data)
}

func transportError(ctx context.Context, err error) error {
	if errors.Is(context.Cause(ctx), errSilent) {
		return backends.Errorf(backends.Unavailable, "e2b: %v", errSilent)
	}
	if ctx.Err() != nil {
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return backends.Errorf(backends.Timeout, "e2b: the command ran past its deadline")
		}
		return backends.Errorf(backends.Unavailable, "e2b: the call was cancelled")
	}
	return backends.Errorf(backends.Unavailable, "e2b: envd is unreachable")
}

// Upload writes data to path in the sandbox (parents created, an existing
// file replaced), as User.
func (e *Envd) Upload(ctx context.Context, path string, data []byte) error {
	q := url.Values{"path": {path}}
	if e.User != "" {
		q.Set("username", e.User)
	}
	req, err := e.newRequest(ctx, http.MethodPost, "/files", q, bytes.NewReader(data))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/octet-stream")
	resp, err := e.client().Do(req)
	if err != nil {
		return transportError(ctx, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return envdHTTPError(resp)
	}
	return nil
}

// Download reads up to limit bytes (all when limit <= 0) of path from
// offset, and returns them with the file's whole size.
func (e *Envd) Download(ctx context.Context, path string, offset, limit int64) ([]byte, int64, error) {
	q := url.Values{"path": {path}}
	if e.User != "" {
		q.Set("username", e.User)
	}
	req, err := e.newRequest(ctx, http.MethodGet, "/files", q, nil)
	if err != nil {
		return nil, 0, err
	}
	if limit > 0 {
		req.Header.Set("Range", fmt.Sprintf("bytes=%d-%d", offset, offset+limit-1))
	}
	resp, err := e.client().Do(req)
	if err != nil {
		return nil, 0, transportError(ctx, err)
	}
	defer resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusOK, http.StatusPartialContent:
	case http.StatusRequestedRangeNotSatisfiable: // offset at or past the end
		size, _ := strconv.ParseInt(strings.TrimPrefix(resp.Header.Get("Content-Range"), "bytes */"), 10, 64)
		return nil, size, nil
	default:
		return nil, 0, envdHTTPError(resp)
	}
	readLimit := int64(64 << 20)
	if limit > 0 {
		readLimit = limit + 1
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, readLimit))
	if err != nil {
		return nil, 0, backends.Errorf(backends.Unavailable, "e2b: download cut: %v", err)
	}
	size := resp.ContentLength
	if cr := resp.Header.Get("Content-Range"); cr != "" {
		if _, total, ok := strings.Cut(cr, "/"); ok {
			size, _ = strconv.ParseInt(total, 10, 64)
		}
	}
	if limit > 0 && int64(len(data)) > limit {
		data = data[:limit]
	}
	return data, size, nil
}
