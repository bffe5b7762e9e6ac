package backendtest

import (
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
)

// Proxy forwards TCP connections on a loopback port to target until cut is
// called; cut closes the listener and every open connection, which to the
// client looks like the service going down. It is NewProxy for tests that
// only cut.
func Proxy(t testing.TB, target string) (addr string, cut func()) {
	t.Helper()
	p := NewProxy(t, target)
	return p.Addr(), p.Cut
}

// TCPProxy forwards TCP connections on a loopback port to a target and can
// fail in two ways: Cut (the service goes down: connections are closed,
// new ones refused) and Blackhole (a silent partition: every byte is
// dropped both ways, nothing is ever closed or reset). It stops when the
// test ends.
type TCPProxy struct {
	ln     net.Listener
	target string

	blackholed atomic.Bool
	accepted   atomic.Int64
	mu         sync.Mutex
	conns      []net.Conn
	cutOnce    sync.Once
}

// NewProxy starts a TCPProxy to target.
func NewProxy(t testing.TB, target string) *TCPProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &TCPProxy{ln: ln, target: target}
	go p.serve()
	t.Cleanup(p.Cut)
	return p
}

// Addr is the proxy's address ("127.0.0.1:port").
func (p *TCPProxy) Addr() string { return p.ln.Addr().String() }

// Cut closes the listener and every open connection.
func (p *TCPProxy) Cut() {
	p.cutOnce.Do(func() {
		p.ln.Close()
		p.mu.Lock()
		defer p.mu.Unlock()
		for _, c := range p.conns {
			c.Close()
		}
	})
}

// Blackhole turns the silent partition on or off. While on, open
// connections stay open but every byte either side sends is read and
// dropped, and new connections are accepted but never reach the target:
// to both ends the peer just stops answering, and nothing tells them the
// link is dead. Turning it off heals only new connections: one that lost
// bytes stays silent (its streams could not be resumed), as a connection
// a NAT forgot does.
func (p *TCPProxy) Blackhole(on bool) { p.blackholed.Store(on) }

// Accepted returns how many connections the proxy has accepted.
func (p *TCPProxy) Accepted() int { return int(p.accepted.Load()) }

func (p *TCPProxy) track(c net.Conn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.conns = append(p.conns, c)
}

func (p *TCPProxy) serve() {
	for {
		in, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.accepted.Add(1)
		p.track(in)
		if p.blackholed.Load() {
			go drain(in)
			continue
		}
		out, err := net.Dial("tcp", p.target)
		if err != nil {
			in.Close()
			continue
		}
		p.track(out)
		go p.pipe(out, in)
		go p.pipe(in, out)
	}
}

// pipe copies src to dst until either fails, then closes dst (the end is
// passed on) — unless the blackhole swallowed bytes of this connection:
// from then on everything is dropped and nothing is closed.
func (p *TCPProxy) pipe(dst, src net.Conn) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if p.blackholed.Load() {
			drain(src)
			return
		}
		if n > 0 {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				src.Close()
				return
			}
		}
		if err != nil {
			dst.Close()
			return
		}
	}
}

// drain reads and drops everything c sends until c is closed (by Cut, or
// by its other end).
func drain(c net.Conn) { _, _ = io.Copy(io.Discard, c) }
