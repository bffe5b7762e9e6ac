package relay

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// maxPktLen is the largest pkt-line git sends (LARGE_PACKET_MAX).
const maxPktLen = 65520

// errFlush ends a pkt-line section.
var errFlush = errors.New("flush-pkt")

// readPkt reads one pkt-line from r and returns its payload; a flush-pkt
// (and the v2 delimiters) return errFlush. raw receives the bytes read.
func readPkt(r *bufio.Reader, raw *bytes.Buffer) ([]byte, error) {
	var head [4]byte
	if _, err := io.ReadFull(r, head[:]); err != nil {
		return nil, fmt.Errorf("relay: a pkt-line length: %w", err)
	}
	raw.Write(head[:])
	n, err := strconv.ParseUint(string(head[:]), 16, 16)
	if err != nil {
		return nil, fmt.Errorf("relay: pkt-line length %q is not hex", head[:])
	}
	switch {
	case n <= 2:
		return nil, errFlush
	case n < 4 || n > maxPktLen:
		return nil, fmt.Errorf("relay: pkt-line length %d is out of range", n)
	}
	payload := make([]byte, n-4)
	if _, err := io.ReadFull(r, payload); err != nil {
		return nil, fmt.Errorf("relay: a pkt-line: %w", err)
	}
	raw.Write(payload)
	return payload, nil
}

// pkt is data as one pkt-line.
func pkt(data string) string { return fmt.Sprintf("%04x%s", len(data)+4, data) }

// RefUpdate is one command of a push: the ref, its value on the remote the
// pusher expects (zero for a new ref) and the new value (zero deletes).
type RefUpdate struct {
	Ref      string `json:"ref"`
	Old, New string `json:"-"`
}

// zeroID reports whether id is git's null object id.
func zeroID(id string) bool { return strings.Trim(id, "0") == "" }

// Delete reports whether u deletes its ref.
func (u RefUpdate) Delete() bool { return zeroID(u.New) }

// Create reports whether u creates its ref.
func (u RefUpdate) Create() bool { return zeroID(u.Old) }

func (u RefUpdate) String() string {
	switch {
	case u.Delete():
		return "delete " + u.Ref
	case u.Create():
		return "create " + u.Ref + " at " + u.New
	}
	return "update " + u.Ref + " " + u.Old + " -> " + u.New
}

// pushRequest is the head of a receive-pack request: its ref updates and
// the capabilities the client asked for, and the bytes they took (to
// forward before the rest of the body).
type pushRequest struct {
	updates []RefUpdate
	caps    []string
	raw     []byte
}

func (p *pushRequest) has(capability string) bool {
	for _, c := range p.caps {
		if c == capability {
			return true
		}
	}
	return false
}

// readPushRequest reads the command list of a receive-pack request (git's
// update-request: shallow lines, then commands up to a flush-pkt). A push
// certificate is refused: the relay cannot check what it signs.
func readPushRequest(r *bufio.Reader) (*pushRequest, error) {
	var raw bytes.Buffer
	p := &pushRequest{}
	for {
		line, err := readPkt(r, &raw)
		if errors.Is(err, errFlush) {
			break
		}
		if err != nil {
			return nil, err
		}
		text := strings.TrimSuffix(string(line), "\n")
		if strings.HasPrefix(text, "shallow ") {
			continue
		}
		if strings.HasPrefix(text, "push-cert") {
			return nil, errors.New("signed pushes (push certificates) are not relayed")
		}
		if cmd, caps, ok := strings.Cut(text, "\x00"); ok {
			text = cmd
			if len(p.updates) == 0 {
				p.caps = strings.Fields(caps)
			}
		}
		f := strings.Fields(text)
		if len(f) != 3 || !objectID(f[0]) || !objectID(f[1]) || !strings.HasPrefix(f[2], "refs/") {
			return nil, fmt.Errorf("relay: %q is not a ref update", text)
		}
		p.updates = append(p.updates, RefUpdate{Old: f[0], New: f[1], Ref: f[2]})
	}
	// No update at all is git's probe before a large push (a lone
	// flush-pkt, to check the credentials before it streams the pack): it
	// changes nothing and is forwarded.
	p.raw = raw.Bytes()
	return p, nil
}

func objectID(s string) bool {
	if len(s) != 40 && len(s) != 64 {
		return false
	}
	for _, c := range s {
		if !strings.ContainsRune("0123456789abcdef", c) {
			return false
		}
	}
	return true
}

// refusal is the receive-pack result refusing every update of p with
// reason, as git shows it ("! [remote rejected] ref (reason)"): wrapped in
// side-band channel 1 when the client asked for a side band.
func refusal(p *pushRequest, reason string) []byte {
	var report strings.Builder
	report.WriteString(pkt("unpack ok\n"))
	for _, u := range p.updates {
		report.WriteString(pkt("ng " + u.Ref + " " + reason + "\n"))
	}
	report.WriteString("0000")
	if !p.has("side-band-64k") && !p.has("side-band") {
		return []byte(report.String())
	}
	return []byte(pkt("\x01"+report.String()) + "0000")
}
