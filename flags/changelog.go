package flags

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"regexp"
	"strconv"
	"syscall"
	"time"
)

// ChangeKind is what a change record changed.
type ChangeKind string

// Change kinds.
const (
	// ChangeRoute: the share of an operation's workspaces on Approach 2.
	ChangeRoute ChangeKind = "route"
	// ChangeShadow: the share of an operation's calls shadowed.
	ChangeShadow ChangeKind = "shadow"
	// ChangeKill: the kill switch in the flags.
	ChangeKill ChangeKind = "kill"
	// ChangeOverride: a gateway's local kill-switch override (admin
	// listener).
	ChangeOverride ChangeKind = "override"
	// ChangeBreaker: an operation's Approach 2 breaker forced open on a
	// gateway (admin listener) or released: From and To are "auto" or
	// "forced open".
	ChangeBreaker ChangeKind = "breaker"
	// ChangeNone: a command that changed no flag value (a rollback of an
	// operation already on Approach 1), recorded all the same.
	ChangeNone ChangeKind = "none"
	// ChangeLegacy: a text line of an older gitgate that could not be
	// read as one of the kinds above; kept for people, ignored by the
	// stage clock.
	ChangeLegacy ChangeKind = "legacy"
)

// AllOps is the operation of a change that applies to every operation.
const AllOps = "all"

// Change is one record of the flag change log: one JSON line per change.
type Change struct {
	At     time.Time  `json:"at"`
	By     string     `json:"by"`
	Reason string     `json:"reason"`
	Kind   ChangeKind `json:"kind"`
	// Op is the operation changed; "" or AllOps: every operation (the kill
	// switch and the override apply to every operation).
	Op   string `json:"op,omitempty"`
	From string `json:"from"`
	To   string `json:"to"`
	// Summary is the command's own description of the whole change
	// ("status: 10% to approach2"), for people.
	Summary string `json:"change,omitempty"`
}

// ChangeLogPath is the change log kept beside the flag file at flagPath.
func ChangeLogPath(flagPath string) string { return flagPath + ".changes.jsonl" }

// Values of route, shadow and kill records.
func percentText(p int) string  { return strconv.Itoa(p) + "%" }
func rateText(r float64) string { return strconv.FormatFloat(r*100, 'g', -1, 64) + "%" }
func onOffText(on bool) string  { return map[bool]string{true: "on", false: "off"}[on] }

// Shadow returns the share (0 to 1) of op's calls shadowed.
func (f *File) Shadow(op string) float64 {
	r, _ := f.Flags[ShadowFlag(op)].Variants["rate"].(float64)
	return r
}

// Diff returns the change records (without who, why and when) that turn
// before into after: the kill switch, then each of ops' route and shadow.
func Diff(before, after *File, ops []string) []Change {
	var out []Change
	if before.Kill() != after.Kill() {
		out = append(out, Change{Kind: ChangeKill, Op: AllOps, From: onOffText(before.Kill()), To: onOffText(after.Kill())})
	}
	for _, op := range ops {
		if b, a := before.Route(op), after.Route(op); b != a {
			out = append(out, Change{Kind: ChangeRoute, Op: op, From: percentText(b), To: percentText(a)})
		}
		if b, a := before.Shadow(op), after.Shadow(op); b != a {
			out = append(out, Change{Kind: ChangeShadow, Op: op, From: rateText(b), To: rateText(a)})
		}
	}
	return out
}

// ChangeLog is a flag change log opened for appending and locked
// (exclusively, across processes, with flock) until closed: an edit holds
// it from reading the flags to saving them.
type ChangeLog struct{ *os.File }

// OpenChangeLog opens (creating it) and locks the change log at path,
// waiting at most wait for another holder of the lock.
func OpenChangeLog(path string, wait time.Duration) (*ChangeLog, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return nil, err
	}
	for start := time.Now(); ; time.Sleep(10 * time.Millisecond) {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return &ChangeLog{f}, nil
		}
		if err != syscall.EWOULDBLOCK || time.Since(start) > wait {
			f.Close()
			if err == syscall.EWOULDBLOCK {
				return nil, fmt.Errorf("%s is locked by another edit (for more than %s)", path, wait)
			}
			return nil, fmt.Errorf("lock %s: %w", path, err)
		}
	}
}

// Append writes records durably at the end of the log, one JSON line
// each, and returns the size the log had before (to take them back with
// Truncate).
func (l *ChangeLog) Append(records ...Change) (int64, error) {
	st, err := l.Stat()
	if err != nil {
		return 0, err
	}
	var buf []byte
	for _, r := range records {
		line, err := json.Marshal(r)
		if err != nil {
			return 0, fmt.Errorf("change record: %w", err)
		}
		buf = append(append(buf, line...), '\n')
	}
	if _, err := l.Write(buf); err != nil {
		_ = l.Truncate(st.Size())
		return 0, err
	}
	return st.Size(), l.Sync()
}

// AppendChanges appends records to the change log at path, taking its
// lock for at most wait.
func AppendChanges(path string, wait time.Duration, records ...Change) error {
	l, err := OpenChangeLog(path, wait)
	if err != nil {
		return err
	}
	defer l.Close()
	_, err = l.Append(records...)
	return err
}

// legacyLine matches the text of an older gitgate's route change
// ("status: 10% to approach2", "status: advanced to 50% on approach2 ...",
// "status: rolled back to approach1", "all: rolled back to approach1").
var legacyLine = regexp.MustCompile(`^(\S+): (?:(\d+)% to approach2|advanced to (\d+)%|(rolled back) to approach1)`)

// ReadChanges reads the change log at path (no file: no changes). Lines
// of older gitgate versions ({"at", "by", "reason", "change"} with a text
// change) are read best effort: a route change recognised in the text
// becomes a route record (its From unknown), anything else a
// ChangeLegacy record. Lines that are not JSON are skipped.
func ReadChanges(path string) ([]Change, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []Change
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 64*1024), 1<<20)
	for sc.Scan() {
		var c Change
		if json.Unmarshal(sc.Bytes(), &c) != nil {
			continue
		}
		if c.Kind == "" {
			c = legacy(c)
		}
		out = append(out, c)
	}
	if err := sc.Err(); err != nil {
		return out, fmt.Errorf("read %s: %w", path, err)
	}
	return out, nil
}

func legacy(c Change) Change {
	c.Kind = ChangeLegacy
	m := legacyLine.FindStringSubmatch(c.Summary)
	if m == nil {
		return c
	}
	c.Kind, c.Op = ChangeRoute, m[1]
	switch {
	case m[2] != "":
		c.To = m[2] + "%"
	case m[3] != "":
		c.To = m[3] + "%"
	default:
		c.To = "0%"
	}
	return c
}

// StageStart is when op's current canary stage began: the time of the
// last route record of op, or of every operation (AllOps); the zero time
// when there is none. Shadow, kill and override records do not restart a
// stage.
func StageStart(changes []Change, op string) time.Time {
	var since time.Time
	for _, c := range changes {
		if c.Kind == ChangeRoute && (c.Op == op || c.Op == AllOps || c.Op == "") && c.At.After(since) {
			since = c.At
		}
	}
	return since
}

// ReadStageStart is StageStart over the change log at path (read as
// ReadChanges reads it).
func ReadStageStart(path, op string) (time.Time, error) {
	changes, err := ReadChanges(path)
	if err != nil {
		return time.Time{}, err
	}
	return StageStart(changes, op), nil
}
