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
	"mime"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/gitgate/gitgate/backends"
	"github.com/gitgate/gitgate/backends/pause"
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
	// KillGrace is how long a command's process group has between SIGTERM
	// and SIGKILL, at its deadline or when it is stopped. If zero, 5 s.
	KillGrace time.Duration
	// metrics, set by the provider, records every request (metrics.go).
	metrics *requestMetrics
	// StopWait is how much longer than KillGrace gitgate waits for envd to
	// confirm that a stopped command is gone. If zero, 10 s.
	StopWait time.Duration
}

// ExecRequest is one command.
type ExecRequest struct {
	Cmd  string
	Args []string
	// Env is the command's whole environment: nothing of envd's own (its
	// PATH, HOME, USER, LOGNAME, and the template's variables from /init)
	// reaches it. The values travel as arguments of /usr/bin/env, which
	// envd logs as it logs environment variables: never put a secret here
	// (upload it as a file).
	Env map[string]string
	Cwd string
	// Timeout is the command's deadline. The command runs in its own
	// process group under GNU timeout: at the deadline the whole group gets
	// SIGTERM, and SIGKILL KillGrace later if the command is still there.
	// envd's own deadline (Connect-Timeout-Ms, which kills only the process
	// it started) is set later than that, as a backstop. Zero: none.
	Timeout time.Duration
	// MaxOutput caps the bytes kept of stdout and of stderr each. 0: 1 MiB.
	MaxOutput int
	// SkipStdout drops the first SkipStdout bytes of stdout as they
	// arrive (counted in StdoutTotalBytes, not kept); MaxOutput caps what
	// is kept after them. The command and envd are unaware of it.
	SkipStdout int64
	// OnStderr receives stderr as it arrives.
	OnStderr func([]byte)
	// Trailer, if set, is a line that ends the command's own stderr: what
	// follows it on stderr is the Trailer of the result, neither kept in
	// Stderr (nor counted against MaxOutput) nor passed to OnStderr.
	Trailer []byte
}

// ExecResult is a finished command.
type ExecResult struct {
	Stdout, Stderr                   []byte
	ExitCode                         int
	StdoutTruncated, StderrTruncated bool
	StdoutTotalBytes                 int64
	// Trailer is what followed the request's Trailer line on stderr, nil
	// when the line never came (maxTrailer bytes of it at most).
	Trailer []byte
}

// maxTrailer caps the bytes kept of a trailer.
const maxTrailer = 16 << 20

// The programs every command is wrapped in (GNU coreutils, in every E2B
// template).
const (
	envPath     = "/usr/bin/env"
	timeoutPath = "/usr/bin/timeout"
)

func (e *Envd) client() *http.Client {
	if e.HTTP != nil {
		return e.HTTP
	}
	return http.DefaultClient
}

func (e *Envd) grace() time.Duration {
	if e.KillGrace > 0 {
		return e.KillGrace
	}
	return 5 * time.Second
}

func (e *Envd) stopWait() time.Duration {
	if e.StopWait > 0 {
		return e.StopWait
	}
	return 10 * time.Second
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

// validName reports whether name can be an environment variable's name
// given to env(1).
func validName(name string) bool {
	if name == "" || (name[0] >= '0' && name[0] <= '9') {
		return false
	}
	for _, c := range name {
		if c != '_' && (c < 'a' || c > 'z') && (c < 'A' || c > 'Z') && (c < '0' || c > '9') {
			return false
		}
	}
	return true
}

// Run runs a command and waits for it: as `env -i NAME=VALUE… timeout -k
// KillGrace Timeout cmd args…`, so that it sees exactly r.Env and runs,
// with all its children, in a process group of its own that dies at its
// deadline. A non-zero exit is a result, not an error; errors carry a
// category, and ErrSandboxGone when the sandbox is gone.
//
// envd keeps a command running when its client goes away. So when the call
// ends without the command's end (cancelled, the stream fell silent or was
// cut, the backstop deadline passed), Run stops the command: SIGTERM
// through envd to the started process (timeout passes it to the group),
// then SIGKILL to the group, until envd's process list no longer shows it
// (bounded by KillGrace and StopWait). If that cannot be confirmed, the
// error is marked sandbox.ErrMayStillRun.
func (e *Envd) Run(ctx context.Context, r ExecRequest) (ExecResult, error) {
	grace := e.grace()
	args := []string{"-i", "--"}
	names := make([]string, 0, len(r.Env))
	for name := range r.Env {
		if !validName(name) {
			return ExecResult{}, backends.Errorf(backends.Internal, "e2b: %q is not an environment variable name", name)
		}
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		args = append(args, name+"="+r.Env[name])
	}
	deadline := "0" // timeout(1): no deadline, still a process group
	var envdTimeout time.Duration
	if r.Timeout > 0 {
		deadline = seconds3(r.Timeout)
		envdTimeout = r.Timeout + grace + max(2*time.Second, r.Timeout/10)
	}
	args = append(append(args, timeoutPath, "-k", seconds3(grace), deadline, r.Cmd), r.Args...)
	tag := "gitgate-" + randomName()
	began := time.Now()
	res, pid, mayRun, err := e.stream(ctx, startSpec{cmd: envPath, args: args, cwd: r.Cwd, tag: tag, timeout: envdTimeout,
		maxOutput: r.MaxOutput, skipStdout: r.SkipStdout, onStderr: r.OnStderr, trailer: r.Trailer})
	if err != nil {
		if !mayRun {
			return res, err
		}
		gone, sandboxGone := e.stop(context.WithoutCancel(ctx), tag, pid)
		switch {
		case sandboxGone:
			return res, fmt.Errorf("%w: %w", ErrSandboxGone, err)
		case !gone:
			return res, &stillRunning{tag: tag, pid: pid, err: &backends.Error{Category: backends.CategoryOf(err),
				Message: backends.MessageOf(err) + "; gitgate could not confirm that the command stopped: it may still be running in the sandbox",
				Err:     errors.Join(err, sandbox.ErrMayStillRun)}}
		}
		return res, err
	}
	if r.Timeout > 0 && time.Since(began) >= r.Timeout && (res.ExitCode == 124 || res.ExitCode == -1 || res.ExitCode == 128+9) {
		// timeout(1) ended it (124), or had to kill the group (itself
		// included). Anything of the group that ignored SIGTERM and
		// outlived the command goes now.
		sweep, cancel := context.WithTimeout(context.WithoutCancel(ctx), grace+e.stopWait())
		_ = e.killGroup(sweep, pid)
		cancel()
		return res, backends.Errorf(backends.Timeout, "e2b: the command ran past its deadline (%s) and was stopped", r.Timeout)
	}
	return res, nil
}

// seconds3 formats d for timeout(1), in seconds with millisecond
// precision.
func seconds3(d time.Duration) string {
	return strconv.FormatFloat(max(d, time.Millisecond).Seconds(), 'f', 3, 64) + "s"
}

// stillRunning is an error of a command Run could not confirm stopped; the
// provider remembers it, and runs nothing more in the sandbox until it is.
type stillRunning struct {
	tag string
	pid uint32
	err error
}

func (s *stillRunning) Error() string { return s.err.Error() }
func (s *stillRunning) Unwrap() error { return s.err }

type startSpec struct {
	cmd        string
	args       []string
	cwd        string
	tag        string        // "" for none
	timeout    time.Duration // envd's deadline; 0 for none
	maxOutput  int
	skipStdout int64 // stdout bytes dropped before keeping any
	onStderr   func([]byte)
	trailer    []byte // see ExecRequest.Trailer
}

// stream starts a command through envd and reads its events to the end.
// mayRun reports, with an error, whether the command may have started and
// not ended (then the caller stops it).
func (e *Envd) stream(ctx context.Context, r startSpec) (res ExecResult, pid uint32, mayRun bool, err error) {
	proc := map[string]any{"cmd": r.cmd, "args": nonNil(r.args), "cwd": r.cwd}
	msg := map[string]any{"process": proc, "stdin": false}
	if r.tag != "" {
		msg["tag"] = r.tag
	}
	payload, err := json.Marshal(msg)
	if err != nil {
		return ExecResult{}, 0, false, backends.Errorf(backends.Internal, "e2b: encode the command: %w", err)
	}
	frame := make([]byte, 5+len(payload))
	binary.BigEndian.PutUint32(frame[1:5], uint32(len(payload)))
	copy(frame[5:], payload)
	keepalive := e.Keepalive
	if keepalive <= 0 {
		keepalive = 50 * time.Second
	}
	if r.timeout > 0 {
		// envd enforces its deadline; this catches an envd too slow to
		// even start, or a stream that stalls past it.
		var cancelDeadline context.CancelFunc
		ctx, cancelDeadline = context.WithTimeout(ctx, r.timeout+max(time.Second, r.timeout/4))
		defer cancelDeadline()
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	req, err := e.newRequest(ctx, http.MethodPost, "/process.Process/Start", nil, bytes.NewReader(frame))
	if err != nil {
		return ExecResult{}, 0, false, err
	}
	req.Header.Set("Content-Type", "application/connect+json")
	req.Header.Set("Connect-Protocol-Version", "1")
	req.Header.Set("Keepalive-Ping-Interval", strconv.Itoa(max(1, int(keepalive/time.Second))))
	if r.timeout > 0 {
		req.Header.Set("Connect-Timeout-Ms", strconv.FormatInt(r.timeout.Milliseconds(), 10))
	}
	resp, err := e.do(req, callProcess)
	if err != nil {
		return ExecResult{}, 0, true, transportError(ctx, err) // the request may have reached envd
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return ExecResult{}, 0, false, envdHTTPError(resp)
	}
	// A stream silent for three keepalive intervals is dead.
	silence := time.AfterFunc(3*keepalive, func() { cancel(errSilent) })
	defer silence.Stop()
	return readProcessStream(ctx, bufio.NewReader(resp.Body), r, func() { silence.Reset(3 * keepalive) })
}

var errSilent = errors.New("envd sent nothing for three keepalive intervals")

// errBadUser marks envd's refusals of the user gitgate runs commands as
// (a name the sandbox's /etc/passwd does not have).
var errBadUser = errors.New("envd does not know the user")

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

func readProcessStream(ctx context.Context, body *bufio.Reader, r startSpec, heard func()) (ExecResult, uint32, bool, error) {
	limit := r.maxOutput
	if limit <= 0 {
		limit = 1 << 20
	}
	var res ExecResult
	var stdout, stderr bytes.Buffer
	var pid uint32
	skip := max(r.skipStdout, 0)
	split := &trailerSplit{mark: r.trailer}
	started, ended := false, false
	for {
		flags, msg, err := readEnvelope(body)
		if err != nil {
			if cause := context.Cause(ctx); cause != nil && ctx.Err() != nil {
				return res, pid, !ended, transportError(ctx, cause)
			}
			return res, pid, !ended, backends.Errorf(backends.Unavailable, "e2b: the command's stream was cut before its end (it may have run): %v", err)
		}
		heard()
		if flags&0x02 != 0 {
			var eos endOfStream
			if err := json.Unmarshal(msg, &eos); err != nil {
				return res, pid, !ended, backends.Errorf(backends.Internal, "e2b: unreadable end of stream: %v", err)
			}
			if eos.Error != nil {
				// Before the start event envd refused the command (bad cwd,
				// unknown user), unless its deadline had passed already.
				return res, pid, !ended && (started || eos.Error.Code == "deadline_exceeded"), connectError(eos.Error.Code, eos.Error.Message)
			}
			if !ended {
				return res, pid, true, backends.Errorf(backends.Unavailable, "e2b: the command's stream ended without its result")
			}
			if d := split.flush(); len(d) > 0 {
				if r.onStderr != nil {
					r.onStderr(d)
				}
				res.StderrTruncated = keep(&stderr, d, limit) || res.StderrTruncated
			}
			res.Stdout, res.Stderr, res.Trailer = stdout.Bytes(), stderr.Bytes(), split.trailer()
			return res, pid, false, nil
		}
		var ev processEvent
		if err := json.Unmarshal(msg, &ev); err != nil {
			return res, pid, !ended, backends.Errorf(backends.Internal, "e2b: unreadable process event: %v", err)
		}
		switch {
		case ev.Event.Start != nil:
			started, pid = true, ev.Event.Start.Pid
		case ev.Event.Data != nil:
			if d := ev.Event.Data.Stdout; len(d) > 0 {
				res.StdoutTotalBytes += int64(len(d))
				k := min(skip, int64(len(d)))
				skip, d = skip-k, d[k:]
				res.StdoutTruncated = keep(&stdout, d, limit) || res.StdoutTruncated
			}
			if d := split.feed(ev.Event.Data.Stderr); len(d) > 0 {
				if r.onStderr != nil {
					r.onStderr(d)
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

// trailerSplit separates a command's stderr from what follows the mark
// line (ExecRequest.Trailer), which may arrive split across chunks: the
// bytes that could begin the mark are held back until the next chunk
// tells.
type trailerSplit struct {
	mark  []byte
	held  []byte
	found bool
	after bytes.Buffer
}

// feed takes a chunk of stderr and returns what of it is the command's.
func (t *trailerSplit) feed(d []byte) []byte {
	if len(t.mark) == 0 {
		return d
	}
	if t.found {
		keep(&t.after, d, maxTrailer)
		return nil
	}
	data := append(t.held, d...)
	t.held = nil
	if i := bytes.Index(data, t.mark); i >= 0 {
		t.found = true
		keep(&t.after, data[i+len(t.mark):], maxTrailer)
		return data[:i]
	}
	hold := min(len(t.mark)-1, len(data))
	for ; hold > 0; hold-- { // the longest tail that begins the mark
		if bytes.HasPrefix(t.mark, data[len(data)-hold:]) {
			break
		}
	}
	t.held = append([]byte(nil), data[len(data)-hold:]...)
	return data[:len(data)-hold]
}

// flush returns what is held back at the end of the stream.
func (t *trailerSplit) flush() []byte {
	d := t.held
	t.held = nil
	return d
}

// trailer is what followed the mark, nil without one.
func (t *trailerSplit) trailer() []byte {
	if !t.found {
		return nil
	}
	return append([]byte{}, t.after.Bytes()...)
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
		if strings.HasPrefix(msg, "invalid username") || strings.HasPrefix(msg, "invalid default user") {
			return fmt.Errorf("%w: %w", errBadUser, backends.Errorf(cat, "e2b: envd: %s: %s", code, msg))
		}
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
	if resp.StatusCode == http.StatusUnauthorized && strings.HasPrefix(e.Message, "error looking up user") {
		return fmt.Errorf("%w: %w", errBadUser, apiError(resp.Request.Method, resp.Request.URL.Path, resp.StatusCode, data))
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
	return e.postFiles(ctx, q, bytes.NewReader(data), "application/octet-stream")
}

// postFiles sends body, of the given content type, to envd's /files.
func (e *Envd) postFiles(ctx context.Context, q url.Values, body io.Reader, contentType string) error {
	req, err := e.newRequest(ctx, http.MethodPost, "/files", q, body)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", contentType)
	resp, err := e.do(req, callWriteFile)
	if err != nil {
		return transportError(ctx, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return envdHTTPError(resp)
	}
	return nil
}

// File is one file of an UploadFiles request.
type File struct {
	Path string // absolute, in the sandbox
	Data []byte
}

// UploadFiles writes files in one request (a multipart form, each part
// named by its path, as E2B's SDKs send it). envd writes the parts in
// order, each whole and closed before it reads the next
// (packages/envd/internal/api/upload.go, handleMultipartUpload), so a file
// that appears after the others says they are complete. Like Upload, the
// files are created 0644 and their bytes are not in envd's request log.
func (e *Envd) UploadFiles(ctx context.Context, files []File) error {
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	for _, f := range files {
		h := textproto.MIMEHeader{}
		h.Set("Content-Disposition", mime.FormatMediaType("form-data", map[string]string{"name": "file", "filename": f.Path}))
		h.Set("Content-Type", "application/octet-stream")
		w, err := mw.CreatePart(h)
		if err != nil {
			return backends.Errorf(backends.Internal, "e2b: %w", err)
		}
		_, _ = w.Write(f.Data)
	}
	if err := mw.Close(); err != nil {
		return backends.Errorf(backends.Internal, "e2b: %w", err)
	}
	var q url.Values
	if e.User != "" {
		q = url.Values{"username": {e.User}}
	}
	return e.postFiles(ctx, q, &body, mw.FormDataContentType())
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
	resp, err := e.do(req, callReadFile)
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

// unary calls a unary Connect method of envd with JSON.
func (e *Envd) unary(ctx context.Context, c call, method string, in, out any) error {
	body, err := json.Marshal(in)
	if err != nil {
		return backends.Errorf(backends.Internal, "e2b: encode %s: %w", method, err)
	}
	req, err := e.newRequest(ctx, http.MethodPost, "/"+method, nil, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Connect-Protocol-Version", "1")
	resp, err := e.do(req, c)
	if err != nil {
		return transportError(ctx, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return envdHTTPError(resp)
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if err != nil {
		return backends.Errorf(backends.Unavailable, "e2b: %s: reading the answer: %v", method, err)
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			return backends.Errorf(backends.Internal, "e2b: %s: unexpected answer: %v", method, err)
		}
	}
	return nil
}

// Signal sends SIGTERM or SIGKILL ("SIGNAL_SIGTERM", "SIGNAL_SIGKILL") to
// the process envd started with tag (not to its children: envd signals
// that process only). A process that is not there is not an error.
func (e *Envd) Signal(ctx context.Context, tag, signal string) error {
	err := e.unary(ctx, callSignal, "process.Process/SendSignal", map[string]any{"process": map[string]any{"tag": tag}, "signal": signal}, nil)
	if backends.CategoryOf(err) == backends.NotFound {
		return nil
	}
	return err
}

// Process is one process envd started and has not reaped.
type Process struct {
	Pid uint32 `json:"pid"`
	Tag string `json:"tag"`
}

// List returns the processes envd started that have not ended (their
// children are not listed).
func (e *Envd) List(ctx context.Context) ([]Process, error) {
	var out struct {
		Processes []Process `json:"processes"`
	}
	err := e.unary(ctx, callListProcesses, "process.Process/List", map[string]any{}, &out)
	return out.Processes, err
}

// killGroup sends SIGKILL to the process group pid leads (every command
// Run starts leads one), from a command of its own.
func (e *Envd) killGroup(ctx context.Context, pid uint32) error {
	if pid == 0 {
		return nil
	}
	_, _, _, err := e.stream(ctx, startSpec{cmd: "/bin/sh", args: []string{"-c", `kill -s KILL -- "-$1" 2>/dev/null; exit 0`, "sh", strconv.FormatUint(uint64(pid), 10)},
		cwd: "/", timeout: 30 * time.Second})
	return err
}

// stop ends the command Run started with tag (pid, when known, is its
// process group) and reports whether envd confirmed it gone, or that the
// sandbox itself is gone. It waits at most KillGrace plus StopWait.
//
// SIGTERM to the started process makes timeout(1) pass it to the group
// and SIGKILL the group KillGrace later; should the process still be
// listed after that, the group gets SIGKILL from a command of gitgate's.
// Once the process is gone, the group gets SIGKILL once more, for
// children that outlived it. (A process group's id cannot be reused while
// any member lives; once it is empty, the id would have to be reused by
// another group leader within these seconds for that last signal to miss.)
func (e *Envd) stop(ctx context.Context, tag string, pid uint32) (gone, sandboxGone bool) {
	grace := e.grace()
	ctx, cancel := context.WithTimeout(ctx, grace+e.stopWait())
	defer cancel()
	escalateAt := time.Now().Add(grace + time.Second)
	if err := e.Signal(ctx, tag, "SIGNAL_SIGTERM"); errors.Is(err, ErrSandboxGone) {
		return true, true
	}
	wait, escalated := 20*time.Millisecond, false
	for {
		procs, err := e.List(ctx)
		if errors.Is(err, ErrSandboxGone) {
			return true, true
		}
		if err == nil {
			i := slices.IndexFunc(procs, func(p Process) bool { return p.Tag == tag })
			if i < 0 {
				_ = e.killGroup(ctx, pid)
				return true, false
			}
			if pid == 0 {
				pid = procs[i].Pid
			}
			if !escalated && time.Now().After(escalateAt) {
				escalated = true
				_ = e.killGroup(ctx, pid)
				_ = e.Signal(ctx, tag, "SIGNAL_SIGKILL")
			}
		}
		if !pause.For(ctx, wait) {
			return false, false
		}
		wait = min(2*wait, 500*time.Millisecond)
	}
}
