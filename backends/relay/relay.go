package relay

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Git's smart-HTTP services.
const (
	UploadPack  = "git-upload-pack"  // clone, fetch, pull
	ReceivePack = "git-receive-pack" // push
)

// DefaultMaxBytes caps one transfer when neither the capability nor the
// Config says otherwise.
const DefaultMaxBytes int64 = 2 << 30

// Config configures a Relay.
type Config struct {
	// Store holds the capabilities. Required.
	Store Store
	// Credentials returns the git user name and token of a project for a
	// direction (a read-only token, where the project has one, for a
	// fetch); ok is false for a project the relay does not know. Required.
	Credentials func(project string, dir Direction) (user, token string, ok bool)
	// Policy, if set, checks each ref update of a push beyond what the
	// relay checks itself (the capability's refs, no deletions): the
	// branch policy (protected branches, agent prefixes). defaultBranch is
	// the remote's default branch (its HEAD, read from the remote for
	// each push; "" when it could not be read). Its error is the refusal's
	// reason.
	Policy func(c Capability, u RefUpdate, defaultBranch string) error
	// AllowDelete lets pushes delete refs (the policy still applies).
	AllowDelete bool
	// MaxBytes caps one transfer (a capability's own cap wins); 0:
	// DefaultMaxBytes, negative: none.
	MaxBytes int64
	// Client forwards to the remotes; nil: a client with no overall
	// timeout (transfers are long) but bounded connection setup.
	Client *http.Client
	// GitPath is the git the relay runs itself, to read a remote's commit
	// graph when a push's pack alone does not show it a fast-forward. If
	// empty, /usr/bin/git.
	GitPath string
	// Meter, if set, tallies each capability's bytes (in and out) for the
	// engine that minted it.
	Meter *Meter
	// Report, if set, gets every request's outcome: bytes (metering), ref
	// updates (audit), refusals and cut-offs.
	Report func(Event)
	Logger *slog.Logger
}

// Event is one relayed request.
type Event struct {
	// Capability is the hash of the secret (never the secret).
	Capability string
	Project    string
	Workspace  string
	Dir        Direction
	Service    string
	// In is the bytes git in the sandbox sent, Out the bytes it got.
	In, Out int64
	// Updates are a push's ref updates as requested.
	Updates []RefUpdate
	// Status is the remote's HTTP status (0 when not forwarded).
	Status int
	// Refused says why the relay refused the request ("" when it did not).
	Refused string
	// CutOff: the size cap ended the transfer (resource_exhausted).
	CutOff bool
}

// Relay is the http.Handler of the relay listener. Git in a sandbox uses
// the URL <relay>/c/<capability secret> for the workspace's remote.
type Relay struct {
	cfg Config
	mux *http.ServeMux
}

// New returns a Relay.
func New(cfg Config) (*Relay, error) {
	if cfg.Store == nil || cfg.Credentials == nil {
		return nil, errors.New("relay: Config needs a Store and Credentials")
	}
	if cfg.MaxBytes == 0 {
		cfg.MaxBytes = DefaultMaxBytes
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.GitPath == "" {
		cfg.GitPath = "/usr/bin/git"
	}
	if cfg.Client == nil {
		cfg.Client = &http.Client{Transport: &http.Transport{
			Proxy: http.ProxyFromEnvironment, TLSHandshakeTimeout: 30 * time.Second,
			ResponseHeaderTimeout: 10 * time.Minute, MaxIdleConnsPerHost: 16, IdleConnTimeout: 90 * time.Second,
		}}
	}
	r := &Relay{cfg: cfg, mux: http.NewServeMux()}
	r.mux.HandleFunc("GET /c/{secret}/info/refs", r.serve)
	r.mux.HandleFunc("POST /c/{secret}/"+UploadPack, r.serve)
	r.mux.HandleFunc("POST /c/{secret}/"+ReceivePack, r.serve)
	return r, nil
}

// URL is the remote URL git in a sandbox uses for a capability, given the
// relay's base URL as the sandbox reaches it.
func URL(base, secret string) string { return strings.TrimSuffix(base, "/") + "/c/" + secret }

// ServeHTTP relays one request of git's smart-HTTP protocol.
func (r *Relay) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	r.mux.ServeHTTP(w, req)
}

func (r *Relay) serve(w http.ResponseWriter, req *http.Request) {
	secret := req.PathValue("secret")
	c, err := Resolve(req.Context(), r.cfg.Store, secret)
	if err != nil {
		status := http.StatusUnauthorized
		if !errors.Is(err, ErrNoCapability) {
			status = http.StatusServiceUnavailable
			r.cfg.Logger.Error("relay: capability store unavailable", "err", err)
		}
		http.Error(w, "gitgate relay: "+err.Error(), status)
		return
	}
	ev := Event{Capability: id(secret), Project: c.Project, Workspace: c.Workspace, Dir: c.Dir}
	defer func() {
		r.cfg.Meter.add(ev.Capability, ev.In+ev.Out)
		if r.cfg.Report != nil {
			r.cfg.Report(ev)
		}
	}()
	rest := strings.TrimPrefix(req.URL.Path, "/c/"+secret+"/")
	ev.Service = strings.TrimPrefix(rest, "info/refs")
	if rest == "info/refs" {
		ev.Service = req.URL.Query().Get("service")
	}
	switch ev.Service {
	case UploadPack:
	case ReceivePack:
		if c.Dir != Push {
			ev.Refused = "a fetch capability cannot push"
			http.Error(w, "gitgate relay: this operation may only fetch (permission_denied)", http.StatusForbidden)
			return
		}
	default:
		ev.Refused = "not a smart-HTTP service"
		http.Error(w, "gitgate relay: only git's smart-HTTP protocol is relayed", http.StatusForbidden)
		return
	}
	user, token, ok := r.cfg.Credentials(c.Project, c.Dir)
	if !ok {
		ev.Refused = "unknown project"
		http.Error(w, "gitgate relay: the capability's project is not configured here", http.StatusForbidden)
		return
	}
	limit := r.cfg.MaxBytes
	if c.MaxBytes != 0 {
		limit = c.MaxBytes
	}
	body := io.Reader(http.NoBody)
	encoding := req.Header.Get("Content-Encoding")
	if req.Method == http.MethodPost {
		in := &countingReader{r: req.Body}
		defer func() { ev.In = in.n }()
		body = in
		if ev.Service == ReceivePack {
			if encoding == "gzip" {
				zr, err := gzip.NewReader(in)
				if err != nil {
					http.Error(w, "gitgate relay: unreadable request body", http.StatusBadRequest)
					return
				}
				body, encoding = zr, ""
			}
			br := bufio.NewReaderSize(body, maxPktLen)
			p, err := readPushRequest(br)
			if err != nil {
				ev.Refused = err.Error()
				http.Error(w, "gitgate relay: "+err.Error()+" (invalid_argument)", http.StatusBadRequest)
				return
			}
			ev.Updates = p.updates
			if why := r.check(req.Context(), c, user, token, p.updates); why != "" {
				ev.Refused = why
				w.Header().Set("Content-Type", "application/x-git-receive-pack-result")
				_, _ = w.Write(refusal(p, why))
				return
			}
			pack := io.Reader(br)
			if needsAncestry(p.updates) {
				spooled, why, cut, err := r.checkAncestry(req.Context(), c, user, token, br, p.updates, limit)
				if err != nil {
					http.Error(w, "gitgate relay: "+err.Error()+" (internal)", http.StatusInternalServerError)
					return
				}
				if spooled != nil {
					defer spooled.discard()
				}
				if why != "" {
					ev.Refused, ev.CutOff = why, cut
					w.Header().Set("Content-Type", "application/x-git-receive-pack-result")
					_, _ = w.Write(refusal(p, why))
					return
				}
				pack = spooled
			}
			body = io.MultiReader(strings.NewReader(string(p.raw)), pack)
		}
		if limit > 0 {
			body = &capReader{r: body, left: limit}
		}
	}
	up, err := http.NewRequestWithContext(req.Context(), req.Method, upstreamURL(c.Remote, rest, req.URL.RawQuery), body)
	if err != nil {
		http.Error(w, "gitgate relay: the capability's remote is not a URL", http.StatusInternalServerError)
		return
	}
	for _, h := range []string{"Content-Type", "Accept", "Git-Protocol", "Accept-Language"} {
		if v := req.Header.Get(h); v != "" {
			up.Header.Set(h, v)
		}
	}
	if encoding != "" {
		up.Header.Set("Content-Encoding", encoding)
	}
	up.Header.Set("User-Agent", "gitgate-relay")
	up.Header.Set("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(user+":"+token)))
	res, err := r.cfg.Client.Do(up)
	if err != nil {
		if errors.Is(err, errCap) {
			ev.CutOff = true
			http.Error(w, fmt.Sprintf("gitgate relay: the push exceeds the size limit of %d bytes (resource_exhausted)", limit), http.StatusRequestEntityTooLarge)
			return
		}
		if req.Context().Err() == nil {
			r.cfg.Logger.Warn("relay: the remote is unreachable", "project", c.Project, "err", err)
		}
		http.Error(w, "gitgate relay: the remote is unreachable (unavailable)", http.StatusBadGateway)
		return
	}
	defer res.Body.Close()
	ev.Status = res.StatusCode
	for _, h := range []string{"Content-Type", "Cache-Control", "Expires", "Pragma", "Content-Encoding"} {
		if v := res.Header.Get(h); v != "" {
			w.Header().Set(h, v)
		}
	}
	if res.StatusCode == http.StatusUnauthorized || res.StatusCode == http.StatusForbidden {
		// The project's token was refused: say so without asking git in
		// the sandbox for credentials it must not have.
		http.Error(w, fmt.Sprintf("gitgate relay: the remote refused the project's credentials (HTTP %d)", res.StatusCode), http.StatusBadGateway)
		return
	}
	w.WriteHeader(res.StatusCode)
	out := &countingWriter{w: w}
	defer func() { ev.Out = out.n }()
	if ev.Service == UploadPack && req.Method == http.MethodPost && limit > 0 && res.Header.Get("Content-Encoding") == "" {
		ev.CutOff = copyCapped(out, res.Body, limit)
		return
	}
	_, _ = io.Copy(out, res.Body)
}

// needsAncestry reports whether an update moves an existing branch (whose
// new value must descend from the old) or an existing tag (refused: a tag
// is never moved).
func needsAncestry(updates []RefUpdate) bool {
	for _, u := range updates {
		if !u.Create() && !u.Delete() {
			return true
		}
	}
	return false
}

// checkAncestry keeps the rest of a push (its pack) in a temporary file,
// up to limit bytes, and returns why an update is refused: a branch moved
// to a commit that does not descend, through the pushed commits, from the
// value it had (a forced update), or a tag moved. The file, rewound, is
// what to forward (discard removes it); cut is set when the push is
// over the limit.
func (r *Relay) checkAncestry(ctx context.Context, c Capability, user, token string, body io.Reader, updates []RefUpdate, limit int64) (file *spoolFile, why string, cut bool, err error) {
	f, err := newSpoolFile()
	if err != nil {
		return nil, "", false, err
	}
	src := body
	if limit > 0 {
		src = &capReader{r: body, left: limit}
	}
	if _, err := io.Copy(f, src); err != nil {
		f.discard()
		if errors.Is(err, errCap) {
			return nil, fmt.Sprintf("the push exceeds the size limit of %d bytes (resource_exhausted)", limit), true, nil
		}
		return nil, "", false, fmt.Errorf("reading the push: %w", err)
	}
	if err := f.rewind(); err != nil {
		f.discard()
		return nil, "", false, err
	}
	parents, perr := packCommits(f, len(updates[0].New))
	if err := f.rewind(); err != nil {
		f.discard()
		return nil, "", false, err
	}
	for _, u := range updates {
		if u.Create() || u.Delete() {
			continue
		}
		if !strings.HasPrefix(u.Ref, "refs/heads/") {
			return f, fmt.Sprintf("%s exists on the remote and is never moved through the relay (permission_denied)", u.Ref), false, nil
		}
		if perr != nil {
			return f, fmt.Sprintf("the push's pack cannot be read to check %s: %v (permission_denied)", u.Ref, perr), false, nil
		}
		ok, frontier := fastForward(parents, u.Old, u.New)
		if !ok && len(frontier) > 0 {
			if ok, err = r.descendsOnRemote(ctx, c, user, token, u.Old, frontier); err != nil {
				return f, fmt.Sprintf("%s: whether %.12s descends from %.12s could not be checked on the remote: %v (unavailable)", u.Ref, u.New, u.Old, err), false, nil
			}
		}
		if !ok {
			return f, fmt.Sprintf("%s: %.12s is not a fast-forward of %.12s, and forced updates are not relayed (permission_denied)", u.Ref, u.New, u.Old), false, nil
		}
	}
	return f, "", false, nil
}

// check returns why the relay refuses updates ("" when it does not).
func (r *Relay) check(ctx context.Context, c Capability, user, token string, updates []RefUpdate) string {
	def := ""
	if r.cfg.Policy != nil {
		def = r.defaultBranch(ctx, c, user, token)
	}
	for _, u := range updates {
		if len(c.Refs) > 0 && !contains(c.Refs, u.Ref) {
			return fmt.Sprintf("%s is not a ref this operation may update (permission_denied)", u.Ref)
		}
		if u.Delete() && !r.cfg.AllowDelete {
			return fmt.Sprintf("deleting %s is not allowed through the relay (permission_denied)", u.Ref)
		}
		if r.cfg.Policy != nil {
			if err := r.cfg.Policy(c, u, def); err != nil {
				return err.Error()
			}
		}
	}
	return ""
}

// defaultBranch is the remote's default branch, from the symref of HEAD
// its upload-pack advertises; "" when it cannot be read.
func (r *Relay) defaultBranch(ctx context.Context, c Capability, user, token string) string {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, upstreamURL(c.Remote, "info/refs", "service="+UploadPack), nil)
	if err != nil {
		return ""
	}
	req.Header.Set("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(user+":"+token)))
	req.Header.Set("User-Agent", "gitgate-relay")
	res, err := r.cfg.Client.Do(req)
	if err != nil {
		return ""
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return ""
	}
	br := bufio.NewReader(io.LimitReader(res.Body, 1<<20))
	var raw bytes.Buffer
	for range 3 { // "# service=...", a flush, then the first ref with the capabilities
		line, err := readPkt(br, &raw)
		if errors.Is(err, errFlush) {
			continue
		}
		if err != nil {
			return ""
		}
		if _, caps, ok := strings.Cut(string(line), "\x00"); ok {
			for _, cap := range strings.Fields(caps) {
				if target, ok := strings.CutPrefix(cap, "symref=HEAD:refs/heads/"); ok {
					return target
				}
			}
			return ""
		}
	}
	return ""
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// upstreamURL is remote's URL for the request path rest and query.
func upstreamURL(remote, rest, query string) string {
	u := strings.TrimSuffix(remote, "/") + "/" + rest
	if query != "" {
		u += "?" + query
	}
	return u
}

// copyCapped copies an upload-pack response, pkt-line by pkt-line, until
// limit bytes were sent; a pkt-line past the limit is replaced by a
// side-band error git shows ("remote error: ...") and the copy ends. It
// reports whether it cut the response off. A response that is not in
// pkt-lines (no side band) is cut off at the limit without a message.
func copyCapped(w io.Writer, r io.Reader, limit int64) (cut bool) {
	br := bufio.NewReaderSize(r, maxPktLen+4)
	var sent int64
	for {
		head, err := br.Peek(4)
		if err != nil {
			_, _ = io.Copy(w, io.LimitReader(br, limit-sent))
			return false
		}
		n, perr := strconv.ParseUint(string(head), 16, 16)
		if perr != nil || (n > 2 && n < 4) || n > maxPktLen {
			// Not a pkt-line: the raw pack after NAK, without a side band.
			_, _ = io.Copy(w, io.LimitReader(br, limit-sent))
			if _, err := br.Peek(1); err == nil {
				return true
			}
			return false
		}
		size := int64(4)
		if n > 2 {
			size = int64(n)
		}
		if sent+size > limit {
			msg := fmt.Sprintf("gitgate relay: the transfer exceeds the size limit of %d bytes (resource_exhausted)", limit)
			_, _ = io.WriteString(w, pkt("\x03"+msg+"\n"))
			return true
		}
		m, err := io.CopyN(w, br, size)
		sent += m
		if err != nil {
			return false
		}
	}
}

// errCap ends a request body past its cap.
var errCap = errors.New("relay: the transfer exceeds its size limit")

type capReader struct {
	r    io.Reader
	left int64
}

func (c *capReader) Read(p []byte) (int, error) {
	if c.left <= 0 {
		return 0, errCap
	}
	if int64(len(p)) > c.left {
		p = p[:c.left+1] // one byte more tells a body at the limit from one past it
	}
	n, err := c.r.Read(p)
	c.left -= int64(n)
	if c.left < 0 {
		return 0, errCap
	}
	return n, err
}

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	if f, ok := c.w.(http.Flusher); ok {
		f.Flush()
	}
	return n, err
}
