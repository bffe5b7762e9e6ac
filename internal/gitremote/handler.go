package gitremote

import (
	"bytes"
	"crypto/subtle"
	"io"
	"log"
	"net/http"
	"net/http/cgi"
	"path"
	"strings"
)

// Limits on what the server keeps or accepts.
const (
	maxRecords     = 10000    // Requests keeps at most this many (newest)
	maxChunkedBody = 64 << 20 // largest chunked request body buffered for CGI
	anonymousUser  = "anonymous"
	realmHeader    = `Basic realm="gitgate-demo"`
)

// RequestRecord describes one HTTP request the server saw.
type RequestRecord struct {
	Method  string // HTTP method
	Path    string // URL path only (never the query string)
	Service string // "git-upload-pack" or "git-receive-pack" from ?service=, else ""
	Status  int    // HTTP status code sent
	User    string // Basic-auth user name supplied (never the password), "" if none
	HadAuth bool   // whether the request carried Basic-auth credentials
	// ReadOnly is true when the credentials were the read-only token.
	ReadOnly bool
}

// Pushes returns how many successful pushes (POSTs to
// /<repo>.git/git-receive-pack answered with HTTP 200) were served for repo,
// given by name without ".git". git's 4-byte "0000" probe POST, sent before
// large chunked pushes, is not counted. A counted push may still have had
// individual ref updates rejected; check Ref for the outcome.
func (s *Server) Pushes(repo string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.pushes[strings.TrimSuffix(repo, ".git")]
}

// Requests returns a copy of the records of every HTTP request seen so far,
// oldest first (at most the newest 10,000).
func (s *Server) Requests() []RequestRecord {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]RequestRecord(nil), s.requests...)
}

// routes builds the handler chain: record → path guard → own ServeMux → git.
func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{repo}/{rest...}", s.serveGit)
	mux.HandleFunc("POST /{repo}/{rest...}", s.serveGit)
	return s.record(guardPath(mux))
}

// record logs and records every request with its final status.
func (s *Server) record(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sw := &statusWriter{ResponseWriter: w}
		next.ServeHTTP(sw, r)
		user, _, hadAuth := r.BasicAuth()
		rec := RequestRecord{
			Method: r.Method, Path: s.redact(r.URL.Path), Service: service(r),
			Status: sw.code(), User: s.redact(user), HadAuth: hadAuth, ReadOnly: s.isReadToken(r),
		}
		s.log.Debug("git http request", "method", rec.Method, "path", rec.Path,
			"service", rec.Service, "status", rec.Status, "user", rec.User)
		s.mu.Lock()
		if len(s.requests) >= maxRecords {
			s.requests = s.requests[1:]
		}
		s.requests = append(s.requests, rec)
		s.mu.Unlock()
	})
}

// guardPath answers 404 for anything but a clean /<name>.git/<rest> path
// with a valid repository name, before ServeMux could clean or redirect it.
func guardPath(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, _, ok := splitRepoPath(r.URL.Path); !ok {
			http.NotFound(w, r)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// splitRepoPath splits "/<name>.git/<rest>" into name and rest. It rejects
// unclean paths (".", "..", "//", trailing "/") and invalid names.
func splitRepoPath(p string) (name, rest string, ok bool) {
	if p == "" || path.Clean(p) != p {
		return "", "", false
	}
	seg, rest, found := strings.Cut(strings.TrimPrefix(p, "/"), "/")
	name, isGit := strings.CutSuffix(seg, ".git")
	if !found || !isGit || rest == "" || !validName(name) {
		return "", "", false
	}
	return name, rest, true
}

// serveGit authenticates the request and hands it to git http-backend.
func (s *Server) serveGit(w http.ResponseWriter, r *http.Request) {
	name, rest, ok := splitRepoPath(r.URL.Path)
	if !ok {
		http.NotFound(w, r)
		return
	}
	user, ok := s.authenticate(r)
	if !ok {
		w.Header().Set("WWW-Authenticate", realmHeader)
		http.Error(w, "authentication required", http.StatusUnauthorized)
		return
	}
	if s.isReadToken(r) && (rest == "git-receive-pack" || service(r) == "git-receive-pack") {
		http.Error(w, "this token is read-only", http.StatusForbidden)
		return
	}
	if _, err := s.repoDir(name); err != nil {
		http.NotFound(w, r)
		return
	}
	r, ok = cgiRequest(w, r)
	if !ok {
		return
	}
	if r.Method == http.MethodPost && rest == "git-receive-pack" && r.ContentLength != 4 && s.cfg.BeforeReceivePack != nil {
		s.cfg.BeforeReceivePack(name)
	}
	if bps := s.rate.bps.Load(); bps > 0 && rest == "git-upload-pack" {
		w = paced(w, bps)
	}
	sw := &statusWriter{ResponseWriter: w}
	s.cgiHandler(user).ServeHTTP(sw, r)
	s.countPush(r, name, rest, sw.code())
}

// countPush counts a receive-pack POST answered with 200 as a push of repo
// name, except git's "0000" probe (a 4-byte body carrying no commands).
func (s *Server) countPush(r *http.Request, name, rest string, status int) {
	if r.Method != http.MethodPost || rest != "git-receive-pack" ||
		status != http.StatusOK || r.ContentLength == 4 {
		return
	}
	s.mu.Lock()
	s.pushes[name]++
	s.mu.Unlock()
}

// authenticate checks Basic auth against Config.Token (constant time) and
// Config.Username, and returns the REMOTE_USER to hand to git.
func (s *Server) authenticate(r *http.Request) (string, bool) {
	user, pass, hadAuth := r.BasicAuth()
	if s.cfg.Token == "" {
		return s.remoteUser(user), true
	}
	if !hadAuth {
		return "", false
	}
	passOK := subtle.ConstantTimeCompare([]byte(pass), []byte(s.cfg.Token)) == 1 || s.isReadToken(r)
	userOK := s.cfg.Username == "" ||
		subtle.ConstantTimeCompare([]byte(user), []byte(s.cfg.Username)) == 1
	return s.remoteUser(user), passOK && userOK
}

// isReadToken reports whether r carries the read-only token.
func (s *Server) isReadToken(r *http.Request) bool {
	_, pass, ok := r.BasicAuth()
	return ok && s.cfg.ReadToken != "" && subtle.ConstantTimeCompare([]byte(pass), []byte(s.cfg.ReadToken)) == 1
}

// remoteUser returns a safe REMOTE_USER value for user name u.
// git http-backend only allows receive-pack (push) when REMOTE_USER is set,
// so an empty, odd or token-bearing name becomes "anonymous".
func (s *Server) remoteUser(u string) string {
	if u == "" || s.redact(u) != u || strings.ContainsFunc(u, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		return anonymousUser
	}
	return u
}

// cgiHandler builds the CGI handler for one request. It is constructed per
// request (cheap) because REMOTE_USER, which makes git http-backend accept
// pushes, is the authenticated user and so varies per request; repository
// configs are left untouched. The environment is built from scratch.
func (s *Server) cgiHandler(user string) *cgi.Handler {
	return &cgi.Handler{
		Path: s.cfg.GitPath,
		Args: []string{"http-backend"},
		Dir:  s.cfg.Root,
		Env: append(s.baseEnv(),
			"GIT_PROJECT_ROOT="+s.cfg.Root,
			"GIT_HTTP_EXPORT_ALL=1",
			"REMOTE_USER="+user,
			// net/http/cgi copies LD_LIBRARY_PATH from our environment;
			// an empty value (ignored by the loader) overrides it.
			"LD_LIBRARY_PATH=",
		),
		Logger: log.New(logWriter{log: s.log, msg: "cgi"}, "", 0),
		Stderr: logWriter{log: s.log, msg: "git http-backend"},
	}
}

// cgiRequest prepares r for CGI: it drops credentials (so they never reach
// git's environment) and buffers a chunked body, which net/http/cgi refuses
// but git sends for large pushes. It reports false if it already responded.
func cgiRequest(w http.ResponseWriter, r *http.Request) (*http.Request, bool) {
	r = r.Clone(r.Context())
	r.Header.Del("Authorization")
	r.Header.Del("Proxy-Authorization")
	if len(r.TransferEncoding) == 0 {
		return r, true
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxChunkedBody))
	if err != nil {
		http.Error(w, "request body too large or unreadable", http.StatusRequestEntityTooLarge)
		return nil, false
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	r.ContentLength, r.TransferEncoding = int64(len(body)), nil
	return r, true
}

// service returns the git service named by the ?service= query, if any.
func service(r *http.Request) string {
	switch v := r.URL.Query().Get("service"); v {
	case "git-upload-pack", "git-receive-pack":
		return v
	}
	return ""
}

// redact replaces every occurrence of the tokens in v.
func (s *Server) redact(v string) string {
	for _, tok := range []string{s.cfg.Token, s.cfg.ReadToken} {
		if tok != "" {
			v = strings.ReplaceAll(v, tok, "[REDACTED]")
		}
	}
	return v
}

// statusWriter remembers the status code written through it.
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

// Unwrap lets http.ResponseController reach the underlying writer.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// code returns the status sent (200 if the handler wrote nothing).
func (w *statusWriter) code() int {
	if w.status == 0 {
		return http.StatusOK
	}
	return w.status
}
