package flags

import (
	"encoding/json"
	"fmt"
	"os"
	"time"
)

// DefaultEditLockWait is how long an Edit waits for another edit's lock on
// the change log when Edit.LockWait is zero. Edits take milliseconds; a
// holder stuck longer (a stopped process) must not stop the kill switch,
// which then changes the flags without a record and says so.
const DefaultEditLockWait = 10 * time.Second

// Edit is one change to a flag file, by an operator's command or by the
// gateway's automatic rollback, recorded with who made it and why in the
// change log beside the file (ChangeLogPath).
type Edit struct {
	By, Reason string
	// Summary is what the command did, in a few words ("status: 10% to
	// approach2"), kept in every record of the change.
	Summary string
	// Ops are the operations a valid flag file names (see File.Validate).
	Ops []string
	// LockWait bounds the wait for another edit's lock on the change log
	// (zero: DefaultEditLockWait).
	LockWait time.Duration
}

// Apply loads the flag file at path, applies change, validates it and
// records it in the change log beside it, as one transaction: every edit
// holds an exclusive lock on the change log from reading the flags to
// saving them, so that two edits (an operator's and the gateway's
// automatic rollback, say) never lose one another; and the change records
// are appended and synced before the flag file is atomically replaced, so
// that whoever sees the new flags also finds their records. If the flag
// file cannot be written, the records are taken back. If the change log
// cannot be written (or stays locked past LockWait), the change still
// stands (a kill switch must work even when its record cannot be written)
// and Apply says so in its error.
func (e Edit) Apply(path string, change func(*File) error) error {
	if _, err := os.Stat(path); err != nil {
		return fmt.Errorf("read flags: %w", err) // and leave no change log beside a mistyped path
	}
	log, logErr := e.lockChangeLog(path)
	if logErr == nil {
		defer log.Close() // and unlocked
	}
	f, err := Load(path)
	if err != nil {
		return fmt.Errorf("read flags: %w", err)
	}
	old, err := Load(path)
	if err != nil {
		return fmt.Errorf("read flags: %w", err)
	}
	if err := change(f); err != nil {
		return err
	}
	if err := f.Validate(e.Ops); err != nil {
		return fmt.Errorf("the change would make the flags invalid: %w", err)
	}
	records := e.records(old, f)
	var before int64
	if logErr == nil {
		before, logErr = log.Append(records...)
	}
	if err := f.Save(path); err != nil {
		if logErr == nil {
			if terr := log.Truncate(before); terr != nil {
				return fmt.Errorf("write flags: %w (and the change log still records the change: %w)", err, terr)
			}
		}
		return fmt.Errorf("write flags: %w", err)
	}
	if logErr != nil {
		return fmt.Errorf("flags changed, but the change log could not be written: %w", logErr)
	}
	return nil
}

// Restore puts the flag file at path back to data, byte for byte (a
// snapshot taken before a drill or an experiment), as one recorded
// transaction like Apply: under the change log's lock, with a record per
// flag value that changes (by, reason and summary from e), the file
// replaced atomically with its permissions kept. data must be valid flags.
func (e Edit) Restore(path string, data []byte) error {
	var f File
	if err := json.Unmarshal(data, &f); err != nil {
		return fmt.Errorf("the flags to restore are not flags: %w", err)
	}
	if err := f.Validate(e.Ops); err != nil {
		return fmt.Errorf("the flags to restore are invalid: %w", err)
	}
	log, logErr := e.lockChangeLog(path)
	if logErr == nil {
		defer log.Close() // and unlocked
	}
	old, err := Load(path)
	if err != nil {
		old = NewFile(e.Ops) // a missing or broken file is replaced all the same
	}
	records := e.records(old, &f)
	var before int64
	if logErr == nil {
		before, logErr = log.Append(records...)
	}
	if err := writeAtomic(path, data); err != nil {
		if logErr == nil {
			_ = log.Truncate(before)
		}
		return fmt.Errorf("write flags: %w", err)
	}
	if logErr != nil {
		return fmt.Errorf("flags restored, but the change log could not be written: %w", logErr)
	}
	return nil
}

// lockChangeLog opens and locks the change log beside the flag file at
// path, waiting at most LockWait (zero: DefaultEditLockWait).
func (e Edit) lockChangeLog(path string) (*ChangeLog, error) {
	wait := e.LockWait
	if wait <= 0 {
		wait = DefaultEditLockWait
	}
	return OpenChangeLog(ChangeLogPath(path), wait)
}

// records are the structured records of the change from old to f: one
// per flag value changed (Diff), each with who, why, when and the summary.
// A change of no value (a rollback of an operation already on Approach 1)
// is still recorded, as one record of kind ChangeNone, so that the log
// shows every command.
func (e Edit) records(old, f *File) []Change {
	records := Diff(old, f, e.Ops)
	if len(records) == 0 {
		records = []Change{{Kind: ChangeNone, Op: AllOps}}
	}
	now := time.Now().UTC()
	for i := range records {
		records[i].At, records[i].By, records[i].Reason, records[i].Summary = now, e.By, e.Reason, e.Summary
	}
	return records
}

// AutomaticRollback is the automatic rollback's edit of the flag file at
// path (canary.RollbackConfig.Apply): op goes back to Approach 1 with no
// shadow traffic (File.RollBack), as `gitgate canary rollback` does, and
// the change log records who did it and why. ops are every operation the
// file must name; lockWait is Edit.LockWait.
func AutomaticRollback(path string, ops []string, lockWait time.Duration) func(op, reason string) error {
	return func(op, reason string) error {
		e := Edit{By: "gitgate (automatic rollback)", Reason: reason, Summary: op + ": " + RolledBackSummary,
			Ops: ops, LockWait: lockWait}
		return e.Apply(path, func(f *File) error { return f.RollBack(op) })
	}
}
