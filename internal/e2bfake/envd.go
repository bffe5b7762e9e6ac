package e2bfake

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"mime"
	"mime/multipart"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// The envd side: reached through the shared-host proxy with the
// E2b-Sandbox-Id header (E2b-Sandbox-Port 49983).

func (s *Server) envdRoutes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /health", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) })
	mux.HandleFunc("POST /process.Process/Start", s.start)
	mux.HandleFunc("POST /process.Process/List", s.listProcs)
	mux.HandleFunc("POST /process.Process/SendSignal", s.sendSignal)
	mux.HandleFunc("GET /files", s.download)
	mux.HandleFunc("POST /files", s.upload)
	mux.HandleFunc("GET /metrics", s.metrics)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		sb := s.sandboxes[r.Header.Get("E2b-Sandbox-Id")]
		hook := s.hook
		var copied Sandbox
		if sb != nil {
			copied = *sb
		}
		s.mu.Unlock()
		if sb == nil || copied.Dead || r.Header.Get("E2b-Sandbox-Port") != "49983" {
			apiError(w, http.StatusBadGateway, "The sandbox was not found")
			return
		}
		if hook != nil {
			hook(copied.ID, r.URL.Path)
		}
		if r.URL.Path != "/health" && copied.Token != "" && r.Header.Get("X-Access-Token") != copied.Token {
			apiError(w, http.StatusUnauthorized, "unauthorized access, please provide a valid access token or method signing if supported")
			return
		}
		mux.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), sandboxKey{}, &copied)))
	})
}

type sandboxKey struct{}

func sandboxOf(r *http.Request) *Sandbox { return r.Context().Value(sandboxKey{}).(*Sandbox) }

// inside maps a path as commands in the sandbox see it to this machine.
func (s *Server) inside(sb *Sandbox, p string) string {
	if p == s.cfg.SandboxHome || strings.HasPrefix(p, s.cfg.SandboxHome+"/") {
		return sb.Dir + strings.TrimPrefix(p, s.cfg.SandboxHome)
	}
	return p
}

// outside maps this machine's paths back to the sandbox's view in output.
func (s *Server) outside(sb *Sandbox, b []byte) []byte {
	return bytes.ReplaceAll(b, []byte(sb.Dir), []byte(s.cfg.SandboxHome))
}

// user checks the Basic-auth user name (empty password), as envd does.
func user(r *http.Request) (string, error) {
	h := r.Header.Get("Authorization")
	if h == "" {
		return "user", nil
	}
	raw, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(h, "Basic "))
	name, _, _ := strings.Cut(string(raw), ":")
	if err != nil || (name != "user" && name != "root") {
		return "", fmt.Errorf("invalid username: '%s'", name)
	}
	return name, nil
}

// connectWriter writes Connect streaming envelopes.
type connectWriter struct {
	mu       sync.Mutex
	w        http.ResponseWriter
	cutAfter int // events after which the connection is dropped; 0: never
	events   int
}

func (c *connectWriter) frame(flags byte, v any) {
	data, _ := json.Marshal(v)
	c.mu.Lock()
	defer c.mu.Unlock()
	var head [5]byte
	head[0] = flags
	binary.BigEndian.PutUint32(head[1:], uint32(len(data)))
	_, _ = c.w.Write(head[:])
	_, _ = c.w.Write(data)
	if f, ok := c.w.(http.Flusher); ok {
		f.Flush()
	}
}

// event writes an event, unless the stream is to be cut: then nothing
// more is written, and the handler drops the connection (abort).
func (c *connectWriter) event(ev map[string]any) {
	if c.isCut() {
		return
	}
	c.frame(0, map[string]any{"event": ev})
	c.mu.Lock()
	c.events++
	c.mu.Unlock()
}

func (c *connectWriter) isCut() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.cutAfter > 0 && c.events >= c.cutAfter
}

func (c *connectWriter) end(code, msg string) {
	if code == "" {
		c.frame(2, map[string]any{})
		return
	}
	c.frame(2, map[string]any{"error": map[string]string{"code": code, "message": msg}})
}

// readEnvelope reads the single request envelope of a streaming call.
func readEnvelope(r io.Reader, v any) error {
	var head [5]byte
	if _, err := io.ReadFull(r, head[:]); err != nil {
		return err
	}
	if head[0] != 0 {
		return errors.New("compressed or unknown envelope flags")
	}
	n := binary.BigEndian.Uint32(head[1:])
	if n > 16<<20 {
		return errors.New("envelope too large")
	}
	data := make([]byte, n)
	if _, err := io.ReadFull(r, data); err != nil {
		return err
	}
	return json.Unmarshal(data, v)
}

type startRequest struct {
	Process processConfig `json:"process"`
	Tag     *string       `json:"tag"`
	Stdin   *bool         `json:"stdin"`
}

type processConfig struct {
	Cmd  string            `json:"cmd"`
	Args []string          `json:"args"`
	Envs map[string]string `json:"envs,omitempty"`
	Cwd  *string           `json:"cwd,omitempty"`
}

// proc is a process envd started. As in envd, it belongs to the sandbox,
// not to the request that started it: a client that goes away leaves it
// running, and only its Connect deadline, SendSignal or the sandbox's end
// stop it.
type proc struct {
	pid    uint32
	tag    *string
	config processConfig
	cmd    *exec.Cmd

	mu       sync.Mutex
	sink     *connectWriter // the attached stream; nil once it went away
	sb       *Sandbox
	s        *Server
	activity chan struct{}
	done     chan struct{} // closed once the process was reaped
	end      map[string]any
}

// procOutput forwards one of the process's outputs to the attached stream,
// if any (envd drops output no stream is forked to).
type procOutput struct {
	p    *proc
	name string
}

func (o procOutput) Write(b []byte) (int, error) {
	o.p.mu.Lock()
	defer o.p.mu.Unlock()
	if o.p.sink != nil {
		o.p.sink.event(map[string]any{"data": map[string]any{o.name: o.p.s.outside(o.p.sb, b)}})
		select {
		case o.p.activity <- struct{}{}:
		default:
		}
	}
	return len(b), nil
}

func (p *proc) detach() {
	p.mu.Lock()
	p.sink = nil
	p.mu.Unlock()
}

// envdShell is how envd execs every command: through /bin/sh and nice, so
// that the process envd knows (and reports the pid of) becomes the
// command itself, and a missing program is nice's exit 127. (envd also
// raises the OOM score in the same script; the fake leaves that out.)
const envdShell = `exec /usr/bin/nice -n 0 "$@"`

// start is process.Process/Start, as envd 0.6.13 does it
// (packages/envd/internal/services/process/start.go and handler/handler.go):
// the command runs for real under envd's environment (PATH, HOME, USER,
// LOGNAME, then /init's variables, then the request's); its output streams
// as data events; the stream ends with an end event and the end-of-stream
// envelope, or only the latter with an error. Connect-Timeout-Ms is also
// the process's deadline, at which only the started process is killed
// (SIGKILL, no process group: its children live on). A client that goes
// away does not stop the process.
func (s *Server) start(w http.ResponseWriter, r *http.Request) {
	if ct := r.Header.Get("Content-Type"); ct != "application/connect+json" {
		w.Header().Set("Accept-Post", "application/connect+json, application/connect+proto, application/grpc, application/grpc-web")
		w.WriteHeader(http.StatusUnsupportedMediaType)
		return
	}
	sb := sandboxOf(r)
	w.Header().Set("Content-Type", "application/connect+json")
	w.WriteHeader(http.StatusOK)
	s.mu.Lock()
	cw := &connectWriter{w: w, cutAfter: s.cutAfter}
	s.mu.Unlock()
	var req startRequest
	if err := readEnvelope(r.Body, &req); err != nil {
		cw.end("invalid_argument", "bad request: "+err.Error())
		return
	}
	name, err := user(r)
	if err != nil {
		cw.end("unauthenticated", err.Error())
		return
	}
	ctx := r.Context()
	procCtx, cancelProc := context.Background(), context.CancelFunc(func() {})
	if ms := r.Header.Get("Connect-Timeout-Ms"); ms != "" {
		n, err := strconv.Atoi(ms)
		if err != nil || n <= 0 {
			cw.end("invalid_argument", "bad Connect-Timeout-Ms")
			return
		}
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, time.Duration(n)*time.Millisecond)
		defer cancel()
		procCtx, cancelProc = context.WithTimeout(procCtx, time.Duration(n)*time.Millisecond)
	}
	cwd := s.cfg.SandboxHome
	if req.Process.Cwd != nil {
		cwd = *req.Process.Cwd
	}
	dir := s.inside(sb, cwd)
	if st, err := os.Stat(dir); err != nil || !st.IsDir() {
		cancelProc()
		cw.end("invalid_argument", fmt.Sprintf("cwd '%s' does not exist", cwd))
		return
	}
	args := []string{"-c", envdShell, "--", s.inside(sb, req.Process.Cmd)}
	for _, a := range req.Process.Args {
		args = append(args, s.insideAll(sb, a))
	}
	cmd := exec.CommandContext(procCtx, "/bin/sh", args...) // the deadline kills this pid only
	cmd.Dir = dir
	home := s.cfg.SandboxHome
	if name == "root" {
		home = "/root"
	}
	cmd.Env = []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME=" + s.inside(sb, home), "USER=" + name, "LOGNAME=" + name}
	for _, k := range sortedKeys(s.initEnv(sb)) {
		cmd.Env = append(cmd.Env, k+"="+s.initEnv(sb)[k])
	}
	for k, v := range req.Process.Envs {
		cmd.Env = append(cmd.Env, k+"="+s.insideAll(sb, v))
	}
	p := &proc{tag: req.Tag, config: req.Process, cmd: cmd, sink: cw, sb: sb, s: s,
		activity: make(chan struct{}, 1), done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = procOutput{p, "stdout"}, procOutput{p, "stderr"}
	// envd reaps the process and closes its pipes at once; children that
	// still hold them are cut off (here after a short delay, so that a
	// loaded machine never loses a finished command's last output).
	cmd.WaitDelay = 2 * time.Second
	p.mu.Lock() // no output before the start event
	if err := cmd.Start(); err != nil {
		p.mu.Unlock()
		cancelProc()
		cw.end("invalid_argument", fmt.Sprintf("error starting process '%s': %v", req.Process.Cmd, err))
		return
	}
	p.pid = uint32(cmd.Process.Pid)
	s.addProc(sb.ID, p)
	s.count(func(c *Counts) {
		c.Processes++
		if runsGit(req.Process) {
			c.GitProcesses++
		}
	})
	cw.event(map[string]any{"start": map[string]any{"pid": p.pid}})
	p.mu.Unlock()
	go func() {
		_ = cmd.Wait()
		cancelProc()
		s.procEnded(sb.ID, cmd.ProcessState)
		p.end = endEvent(cmd.ProcessState)
		s.removeProc(sb.ID, p.pid)
		close(p.done)
	}()
	keepalive := 90 * time.Second
	if v, err := strconv.Atoi(r.Header.Get("Keepalive-Ping-Interval")); err == nil && v > 0 {
		keepalive = time.Duration(v) * time.Second
	}
	ticker := time.NewTicker(keepalive)
	defer ticker.Stop()
	for {
		select {
		case <-p.done:
			p.detach()
			if cw.isCut() {
				panic(http.ErrAbortHandler) // the connection drops: no end event, no end frame
			}
			cw.event(map[string]any{"end": p.end})
			cw.end("", "")
			return
		case <-p.activity:
			ticker.Reset(keepalive)
		case <-ticker.C:
			cw.event(map[string]any{"keepalive": map[string]any{}})
		case <-ctx.Done():
			p.detach() // the process runs on (killed by its own deadline, if any)
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				cw.end("deadline_exceeded", "context deadline exceeded")
			}
			return
		}
	}
}

// endEvent is envd's end event for a reaped process.
func endEvent(ps *os.ProcessState) map[string]any {
	if ps == nil {
		return map[string]any{"exitCode": -1, "status": "unknown", "error": "unknown"}
	}
	if ws, ok := ps.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return map[string]any{"exitCode": -1, "status": ps.String(), "error": ps.String()}
	}
	if ps.ExitCode() == 0 {
		return map[string]any{"exited": true, "status": ps.String()}
	}
	return map[string]any{"exitCode": ps.ExitCode(), "exited": true, "status": ps.String(), "error": ps.String()}
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// initEnv is what envd's /init gave it: E2B_SANDBOX_ID and the template's
// variables (Config.InitEnv).
func (s *Server) initEnv(sb *Sandbox) map[string]string {
	env := map[string]string{}
	maps.Copy(env, s.cfg.InitEnv)
	env["E2B_SANDBOX_ID"] = sb.ID
	return env
}

func (s *Server) addProc(sandboxID string, p *proc) {
	s.pmu.Lock()
	defer s.pmu.Unlock()
	if s.procs[sandboxID] == nil {
		s.procs[sandboxID] = map[uint32]*proc{}
	}
	s.procs[sandboxID][p.pid] = p
}

func (s *Server) removeProc(sandboxID string, pid uint32) {
	s.pmu.Lock()
	defer s.pmu.Unlock()
	delete(s.procs[sandboxID], pid)
}

// unary reads a unary Connect request (application/json) after envd's
// username check; it answers errors itself and reports whether to go on.
func unary(w http.ResponseWriter, r *http.Request, v any) bool {
	if ct := r.Header.Get("Content-Type"); ct != "application/json" {
		w.Header().Set("Accept-Post", "application/json, application/proto")
		w.WriteHeader(http.StatusUnsupportedMediaType)
		return false
	}
	if _, err := user(r); err != nil {
		connectUnaryError(w, http.StatusUnauthorized, "unauthenticated", err.Error())
		return false
	}
	if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(v); err != nil && !errors.Is(err, io.EOF) {
		connectUnaryError(w, http.StatusBadRequest, "invalid_argument", "bad request: "+err.Error())
		return false
	}
	return true
}

func connectUnaryError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"code": code, "message": msg})
}

// listProcs is process.Process/List: the processes envd started that were not
// reaped yet (their children are not listed).
func (s *Server) listProcs(w http.ResponseWriter, r *http.Request) {
	var req struct{}
	if !unary(w, r, &req) {
		return
	}
	sb := sandboxOf(r)
	s.pmu.Lock()
	out := []map[string]any{}
	for _, p := range s.procs[sb.ID] {
		info := map[string]any{"pid": p.pid, "config": p.config}
		if p.tag != nil {
			info["tag"] = *p.tag
		}
		out = append(out, info)
	}
	s.pmu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i]["pid"].(uint32) < out[j]["pid"].(uint32) })
	writeJSON(w, http.StatusOK, map[string]any{"processes": out})
}

// sendSignal is process.Process/SendSignal: SIGTERM or SIGKILL to the
// started process only (envd signals cmd.Process, not a group), selected
// by pid or by tag.
func (s *Server) sendSignal(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Process struct {
			Pid *uint32 `json:"pid"`
			Tag *string `json:"tag"`
		} `json:"process"`
		Signal json.RawMessage `json:"signal"`
	}
	if !unary(w, r, &req) {
		return
	}
	var sig syscall.Signal
	switch strings.Trim(string(req.Signal), `"`) {
	case "SIGNAL_SIGKILL", "9":
		sig = syscall.SIGKILL
	case "SIGNAL_SIGTERM", "15":
		sig = syscall.SIGTERM
	default:
		connectUnaryError(w, http.StatusNotImplemented, "unimplemented", "invalid signal: "+string(req.Signal))
		return
	}
	sb := sandboxOf(r)
	s.pmu.Lock()
	var found *proc
	var what string
	switch {
	case req.Process.Pid != nil:
		found = s.procs[sb.ID][*req.Process.Pid]
		what = fmt.Sprintf("pid %d", *req.Process.Pid)
	case req.Process.Tag != nil:
		for _, p := range s.procs[sb.ID] {
			if p.tag != nil && *p.tag == *req.Process.Tag {
				found = p
			}
		}
		what = "tag " + *req.Process.Tag
	default:
		s.pmu.Unlock()
		connectUnaryError(w, http.StatusNotImplemented, "unimplemented", "invalid input type")
		return
	}
	s.pmu.Unlock()
	if found == nil {
		connectUnaryError(w, http.StatusNotFound, "not_found", "process with "+what+" not found")
		return
	}
	if sig == syscall.SIGKILL || sig == syscall.SIGTERM {
		found.detach() // envd stops forwarding its output
	}
	if err := found.cmd.Process.Signal(sig); err != nil {
		connectUnaryError(w, http.StatusInternalServerError, "internal", "error sending signal: "+err.Error())
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{})
}

// killSandboxProcesses ends every process of a sandbox, as the end of its
// VM does: those envd started (with the process groups they lead), and
// any other whose working directory is in the sandbox or whose
// environment names it (their children).
func (s *Server) killSandboxProcesses(sb *Sandbox) {
	s.pmu.Lock()
	procs := s.procs[sb.ID]
	delete(s.procs, sb.ID)
	s.pmu.Unlock()
	for _, p := range procs {
		killWithGroup(int(p.pid))
	}
	entries, _ := os.ReadDir("/proc")
	marker := []byte("E2B_SANDBOX_ID=" + sb.ID + "\x00")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		cwd, _ := os.Readlink("/proc/" + e.Name() + "/cwd")
		environ, _ := os.ReadFile("/proc/" + e.Name() + "/environ")
		if cwd == sb.Dir || strings.HasPrefix(cwd, sb.Dir+"/") || bytes.Contains(environ, marker) {
			killWithGroup(pid)
		}
	}
}

// killWithGroup kills pid, and the process group it leads if it leads one
// (never this test process's own group).
func killWithGroup(pid int) {
	if pgid, err := syscall.Getpgid(pid); err == nil && pgid == pid && pgid != syscall.Getpgrp() {
		_ = syscall.Kill(-pid, syscall.SIGKILL)
	}
	_ = syscall.Kill(pid, syscall.SIGKILL)
}

// insideAll maps every occurrence of the sandbox home in v (arguments such
// as --git-dir=/home/user/... carry paths inside them).
func (s *Server) insideAll(sb *Sandbox, v string) string {
	return strings.ReplaceAll(v, s.cfg.SandboxHome, sb.Dir)
}

func (s *Server) filePath(w http.ResponseWriter, r *http.Request) (string, bool) {
	p := r.URL.Query().Get("path")
	if p == "" {
		apiError(w, http.StatusBadRequest, "path is required")
		return "", false
	}
	if !filepath.IsAbs(p) {
		p = filepath.Join(s.cfg.SandboxHome, p)
	}
	return s.inside(sandboxOf(r), filepath.Clean(p)), true
}

// download is GET /files: raw bytes, with ranges.
func (s *Server) download(w http.ResponseWriter, r *http.Request) {
	p, ok := s.filePath(w, r)
	if !ok {
		return
	}
	f, err := os.Open(p)
	if err != nil {
		apiError(w, http.StatusNotFound, fmt.Sprintf("path '%s' does not exist", r.URL.Query().Get("path")))
		return
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil || st.IsDir() {
		apiError(w, http.StatusBadRequest, "path is a directory")
		return
	}
	http.ServeContent(w, r, filepath.Base(p), st.ModTime(), f)
}

// runsGit reports whether a started command is git or runs it (its
// command or an argument names git).
func runsGit(c processConfig) bool {
	for _, a := range append([]string{c.Cmd}, c.Args...) {
		if filepath.Base(a) == "git" {
			return true
		}
	}
	return false
}

// upload is POST /files, as envd does it
// (packages/envd/internal/api/upload.go): the username must exist (else
// 401); the body is the file's bytes (application/octet-stream, path
// required) or a multipart form whose "file" parts are written one after
// the other, each fully and closed before the next is read, to the path
// parameter or else the part's file name (a path, relative to the home);
// parents are created (0755), an existing file is truncated and keeps its
// mode, a new one is created 0666 less the umask — 0644, not private.
// (envd also chowns it to the user; the fake runs as one user.)
func (s *Server) upload(w http.ResponseWriter, r *http.Request) {
	s.count(func(c *Counts) { c.Uploads++ })
	if name := r.URL.Query().Get("username"); name != "" && name != "user" && name != "root" {
		apiError(w, http.StatusUnauthorized, fmt.Sprintf("error looking up user '%s': user: unknown user %s", name, name))
		return
	}
	media, params, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	var written []map[string]string
	switch {
	case media == "application/octet-stream":
		p, ok := s.filePath(w, r)
		if !ok {
			return
		}
		if err := writeUpload(p, r.Body); err != nil {
			apiError(w, http.StatusInternalServerError, "write failed")
			return
		}
		written = append(written, map[string]string{"name": filepath.Base(p), "path": r.URL.Query().Get("path"), "type": "file"})
	case strings.HasPrefix(media, "multipart/"):
		mr := multipart.NewReader(r.Body, params["boundary"])
		seen := map[string]bool{}
		for {
			part, err := mr.NextPart()
			if err == io.EOF {
				break
			}
			if err != nil {
				apiError(w, http.StatusInternalServerError, "error reading form: "+err.Error())
				return
			}
			if part.FormName() != "file" {
				continue
			}
			target := r.URL.Query().Get("path")
			if target == "" {
				_, dp, _ := mime.ParseMediaType(part.Header.Get("Content-Disposition"))
				target = dp["filename"] // the whole path, as envd's CustomPart reads it
			}
			if target == "" {
				apiError(w, http.StatusBadRequest, "error resolving path: no file name")
				return
			}
			if !filepath.IsAbs(target) {
				target = filepath.Join(s.cfg.SandboxHome, target)
			}
			target = filepath.Clean(target)
			if seen[target] {
				apiError(w, http.StatusBadRequest, fmt.Sprintf("you cannot upload multiple files to the same path '%s' in one upload request", target))
				return
			}
			seen[target] = true
			if err := writeUpload(s.inside(sandboxOf(r), target), part); err != nil {
				apiError(w, http.StatusInternalServerError, "write failed")
				return
			}
			written = append(written, map[string]string{"name": filepath.Base(target), "path": target, "type": "file"})
		}
	default:
		apiError(w, http.StatusBadRequest, "unsupported content type: "+r.Header.Get("Content-Type")+", expected multipart/form-data or application/octet-stream")
		return
	}
	w.Header().Set("Content-Type", "text/plain")
	_ = json.NewEncoder(w).Encode(written)
}

// writeUpload writes one uploaded file at p, as envd's processFile.
func writeUpload(p string, body io.Reader) error {
	err := os.MkdirAll(filepath.Dir(p), 0o755)
	var f *os.File
	if err == nil {
		f, err = os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o666)
	}
	if err == nil {
		_, err = io.Copy(f, body)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}
	return err
}
