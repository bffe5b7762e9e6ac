package relay

import (
	"bufio"
	"bytes"
	"compress/zlib"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"strings"
)

// Object types of a pack.
const (
	objCommit   = 1
	objOfsDelta = 6
	objRefDelta = 7
)

// maxCommitBytes bounds the commit objects a pack's parse keeps.
const maxCommitBytes = 1 << 20

// packCommits reads a pack (git's packfile format, version 2 or 3) and
// returns the parents of every commit in it, by object id (idLen hex
// digits: 40 for SHA-1, 64 for SHA-256). Commits stored as deltas are
// resolved when their base is a commit of the same pack; a commit whose
// base is outside the pack (a thin pack's) is not returned, which can only
// make a fast-forward unprovable, never prove a false one.
func packCommits(r io.Reader, idLen int) (map[string][]string, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	counted := &countingByteReader{r: br}
	var head [12]byte
	if _, err := io.ReadFull(counted, head[:]); err != nil {
		return nil, fmt.Errorf("relay: the pack's header: %w", err)
	}
	if string(head[:4]) != "PACK" {
		return nil, errors.New("relay: the push's data is not a pack")
	}
	if v := binary.BigEndian.Uint32(head[4:8]); v != 2 && v != 3 {
		return nil, fmt.Errorf("relay: pack version %d", v)
	}
	count := binary.BigEndian.Uint32(head[8:12])
	newHash := func() hash.Hash { return sha1.New() }
	if idLen == 64 {
		newHash = sha256.New
	}
	rawLen := idLen / 2
	commitsAt := map[int64][]byte{} // commit content by the offset of its object
	commitsByID := map[string][]byte{}
	kept := 0
	parents := map[string][]string{}
	for range count {
		start := counted.n
		typ, size, err := objectHeader(counted)
		if err != nil {
			return nil, err
		}
		var base []byte
		baseKnown := false
		switch typ {
		case objOfsDelta:
			off, err := ofsDeltaOffset(counted)
			if err != nil {
				return nil, err
			}
			base, baseKnown = commitsAt[start-off]
		case objRefDelta:
			id := make([]byte, rawLen)
			if _, err := io.ReadFull(counted, id); err != nil {
				return nil, fmt.Errorf("relay: a delta's base: %w", err)
			}
			base, baseKnown = commitsByID[hex.EncodeToString(id)]
		}
		keep := typ == objCommit || baseKnown
		data, err := inflate(counted, size, keep && size <= maxCommitBytes)
		if err != nil {
			return nil, err
		}
		if !keep || data == nil {
			continue
		}
		if baseKnown {
			if data, err = applyDelta(base, data); err != nil {
				return nil, err
			}
		}
		if kept += len(data); kept > 64*maxCommitBytes {
			return nil, errors.New("relay: the push's commits are too large to check")
		}
		h := newHash()
		fmt.Fprintf(h, "commit %d\x00", len(data))
		h.Write(data)
		id := hex.EncodeToString(h.Sum(nil))
		commitsAt[start], commitsByID[id] = data, data
		parents[id] = commitParents(data)
	}
	return parents, nil
}

// objectHeader reads an object's type and inflated size.
func objectHeader(r io.ByteReader) (typ int, size int64, err error) {
	c, err := r.ReadByte()
	if err != nil {
		return 0, 0, fmt.Errorf("relay: an object header: %w", err)
	}
	typ, size = int(c>>4&7), int64(c&15)
	for shift := uint(4); c&0x80 != 0; shift += 7 {
		if c, err = r.ReadByte(); err != nil {
			return 0, 0, fmt.Errorf("relay: an object header: %w", err)
		}
		if shift > 56 {
			return 0, 0, errors.New("relay: an object size out of range")
		}
		size |= int64(c&0x7f) << shift
	}
	return typ, size, nil
}

// ofsDeltaOffset reads an OFS_DELTA's distance back to its base.
func ofsDeltaOffset(r io.ByteReader) (int64, error) {
	c, err := r.ReadByte()
	if err != nil {
		return 0, err
	}
	off := int64(c & 0x7f)
	for c&0x80 != 0 {
		if c, err = r.ReadByte(); err != nil {
			return 0, err
		}
		if off > 1<<55 {
			return 0, errors.New("relay: a delta offset out of range")
		}
		off = (off+1)<<7 | int64(c&0x7f)
	}
	return off, nil
}

// inflate reads one zlib stream of size bytes inflated, returning them
// when keep (else discarding them). r is a ByteReader, so the inflater
// reads nothing past the stream.
func inflate(r *countingByteReader, size int64, keep bool) ([]byte, error) {
	z, err := zlib.NewReader(r)
	if err != nil {
		return nil, fmt.Errorf("relay: an object's data: %w", err)
	}
	defer z.Close()
	var out []byte
	var buf bytes.Buffer
	var w io.Writer
	if keep {
		w = &buf
	} else {
		w = io.Discard
	}
	n, err := io.Copy(w, io.LimitReader(z, size+1))
	if err != nil {
		return nil, fmt.Errorf("relay: an object's data: %w", err)
	}
	if n != size {
		return nil, fmt.Errorf("relay: an object inflates to %d bytes, its header says %d", n, size)
	}
	// Read to the end of the stream (and its checksum).
	if _, err := io.Copy(io.Discard, z); err != nil {
		return nil, fmt.Errorf("relay: an object's data: %w", err)
	}
	if keep {
		out = buf.Bytes()
	}
	return out, nil
}

// applyDelta applies git's delta to base.
func applyDelta(base, delta []byte) ([]byte, error) {
	bad := errors.New("relay: a malformed delta")
	pos := 0
	varint := func() (int, bool) {
		v, shift := 0, 0
		for pos < len(delta) {
			c := delta[pos]
			pos++
			v |= int(c&0x7f) << shift
			if c&0x80 == 0 {
				return v, true
			}
			shift += 7
			if shift > 56 {
				return 0, false
			}
		}
		return 0, false
	}
	srcSize, ok1 := varint()
	dstSize, ok2 := varint()
	if !ok1 || !ok2 || srcSize != len(base) || dstSize > maxCommitBytes {
		return nil, bad
	}
	out := make([]byte, 0, dstSize)
	for pos < len(delta) {
		op := delta[pos]
		pos++
		if op&0x80 == 0 {
			n := int(op)
			if n == 0 || pos+n > len(delta) {
				return nil, bad
			}
			out = append(out, delta[pos:pos+n]...)
			pos += n
			continue
		}
		var off, n int
		for i := range 4 {
			if op&(1<<i) != 0 {
				if pos >= len(delta) {
					return nil, bad
				}
				off |= int(delta[pos]) << (8 * i)
				pos++
			}
		}
		for i := range 3 {
			if op&(1<<(4+i)) != 0 {
				if pos >= len(delta) {
					return nil, bad
				}
				n |= int(delta[pos]) << (8 * i)
				pos++
			}
		}
		if n == 0 {
			n = 0x10000
		}
		if off+n > len(base) || len(out)+n > dstSize {
			return nil, bad
		}
		out = append(out, base[off:off+n]...)
	}
	if len(out) != dstSize {
		return nil, bad
	}
	return out, nil
}

// commitParents are the parent ids of a commit object's content.
func commitParents(data []byte) []string {
	var out []string
	for line := range strings.SplitSeq(string(data), "\n") {
		if line == "" {
			break // the headers end at the first empty line
		}
		if p, ok := strings.CutPrefix(line, "parent "); ok {
			out = append(out, p)
		}
	}
	return out
}

// fastForward reports whether new descends from old through the commits
// of the pushed pack (parents); when it cannot tell, frontier are the
// commits the walk reached that are not in the pack (the remote has them:
// new itself, when the remote has it already), from which old may still
// descend through the remote's history.
func fastForward(parents map[string][]string, old, new string) (ok bool, frontier []string) {
	seen := map[string]bool{}
	queue := []string{new}
	for len(queue) > 0 {
		id := queue[0]
		queue = queue[1:]
		if id == old {
			return true, nil
		}
		if seen[id] {
			continue
		}
		seen[id] = true
		ps, inPack := parents[id]
		if !inPack {
			frontier = append(frontier, id)
			continue
		}
		queue = append(queue, ps...)
	}
	return false, frontier
}

// countingByteReader counts the bytes read through it (an object's offset
// in the pack).
type countingByteReader struct {
	r *bufio.Reader
	n int64
}

func (c *countingByteReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

func (c *countingByteReader) ReadByte() (byte, error) {
	b, err := c.r.ReadByte()
	if err == nil {
		c.n++
	}
	return b, err
}

// spoolFile is a push kept on disk while it is checked, removed on Close.
type spoolFile struct{ *os.File }

func newSpoolFile() (*spoolFile, error) {
	f, err := os.CreateTemp("", "gitgate-relay-push-*")
	if err != nil {
		return nil, fmt.Errorf("keeping the push while it is checked: %w", err)
	}
	return &spoolFile{f}, nil
}

func (f *spoolFile) rewind() error {
	_, err := f.Seek(0, io.SeekStart)
	return err
}

// discard closes and removes the file.
func (f *spoolFile) discard() {
	_ = f.File.Close()
	_ = os.Remove(f.Name())
}
