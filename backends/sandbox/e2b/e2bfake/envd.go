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
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
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
	mux.HandleFunc("GET /files", s.download)
	mux.HandleFunc("POST /files", s.upload)
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
	Process struct {
		Cmd  string            `json:"cmd"`
		Args []string          `json:"args"`
		Envs map[string]string `json:"envs"`
		Cwd  *string           `json:"cwd"`
	} `json:"process"`
	Stdin *bool `json:"stdin"`
}

// start is process.Process/Start: the command runs for real, its output
// streams as data events, and the stream ends with an end event and the
// end-of-stream envelope (or only the latter with an error).
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
	if _, err := user(r); err != nil {
		cw.end("unauthenticated", err.Error())
		return
	}
	ctx := r.Context()
	if ms := r.Header.Get("Connect-Timeout-Ms"); ms != "" {
		n, err := strconv.Atoi(ms)
		if err != nil || n <= 0 {
			cw.end("invalid_argument", "bad Connect-Timeout-Ms")
			return
		}
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, time.Duration(n)*time.Millisecond)
		defer cancel()
	}
	cwd := s.cfg.SandboxHome
	if req.Process.Cwd != nil {
		cwd = *req.Process.Cwd
	}
	dir := s.inside(sb, cwd)
	if st, err := os.Stat(dir); err != nil || !st.IsDir() {
		cw.end("invalid_argument", fmt.Sprintf("cwd '%s' does not exist", cwd))
		return
	}
	args := make([]string, len(req.Process.Args))
	for i, a := range req.Process.Args {
		args[i] = s.insideAll(sb, a)
	}
	cmd := exec.Command(s.inside(sb, req.Process.Cmd), args...)
	cmd.Dir = dir
	cmd.Env = []string{"PATH=/usr/local/bin:/usr/bin:/bin", "HOME=" + s.inside(sb, s.cfg.SandboxHome), "USER=user", "LOGNAME=user"}
	for k, v := range req.Process.Envs {
		cmd.Env = append(cmd.Env, k+"="+s.insideAll(sb, v))
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	stdout, _ := cmd.StdoutPipe()
	stderr, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		// envd execs through a shell wrapper: a missing binary is exit 127.
		cw.event(map[string]any{"start": map[string]any{"pid": 0}})
		cw.event(map[string]any{"data": map[string]any{"stderr": []byte(fmt.Sprintf("nice: '%s': No such file or directory\n", req.Process.Cmd))}})
		cw.event(map[string]any{"end": map[string]any{"exitCode": 127, "exited": true, "status": "exit status 127", "error": "exit status 127"}})
		cw.end("", "")
		return
	}
	cw.event(map[string]any{"start": map[string]any{"pid": cmd.Process.Pid}})
	var wg sync.WaitGroup
	activity := make(chan struct{}, 1)
	pump := func(rd io.Reader, name string) {
		defer wg.Done()
		buf := make([]byte, 32<<10)
		for {
			n, err := rd.Read(buf)
			if n > 0 {
				cw.event(map[string]any{"data": map[string]any{name: s.outside(sb, buf[:n])}})
				select {
				case activity <- struct{}{}:
				default:
				}
			}
			if err != nil {
				return
			}
		}
	}
	wg.Add(2)
	go pump(stdout, "stdout")
	go pump(stderr, "stderr")
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	keepalive := 90 * time.Second
	if v, err := strconv.Atoi(r.Header.Get("Keepalive-Ping-Interval")); err == nil && v > 0 {
		keepalive = time.Duration(v) * time.Second
	}
	ticker := time.NewTicker(keepalive)
	defer ticker.Stop()
	for waiting := true; waiting; {
		select {
		case <-done:
			waiting = false
		case <-activity:
			ticker.Reset(keepalive)
		case <-ticker.C:
			cw.event(map[string]any{"keepalive": map[string]any{}})
		case <-ctx.Done():
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-done
			_ = cmd.Wait()
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				cw.end("deadline_exceeded", "context deadline exceeded")
			}
			return
		}
	}
	err := cmd.Wait()
	if cw.isCut() {
		panic(http.ErrAbortHandler) // the connection drops: no end event, no end frame
	}
	end := map[string]any{"exited": true, "status": "exit status 0"}
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		if ws, ok := exit.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			end = map[string]any{"exitCode": -1, "status": "signal: " + ws.Signal().String(), "error": "signal: " + ws.Signal().String()}
		} else {
			end = map[string]any{"exitCode": exit.ExitCode(), "exited": true, "status": exit.Error(), "error": exit.Error()}
		}
	}
	cw.event(map[string]any{"end": end})
	cw.end("", "")
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

// upload is POST /files with an application/octet-stream body: parents
// are created, an existing file overwritten.
func (s *Server) upload(w http.ResponseWriter, r *http.Request) {
	p, ok := s.filePath(w, r)
	if !ok {
		return
	}
	if r.Header.Get("Content-Type") != "application/octet-stream" {
		apiError(w, http.StatusBadRequest, "only application/octet-stream uploads are supported by this fake")
		return
	}
	data, err := io.ReadAll(r.Body)
	if err == nil {
		err = os.MkdirAll(filepath.Dir(p), 0o755)
	}
	if err == nil {
		err = os.WriteFile(p, data, 0o600)
	}
	if err != nil {
		apiError(w, http.StatusInternalServerError, "write failed")
		return
	}
	w.Header().Set("Content-Type", "text/plain")
	_ = json.NewEncoder(w).Encode([]map[string]string{{"name": filepath.Base(p), "path": r.URL.Query().Get("path"), "type": "file"}})
}
