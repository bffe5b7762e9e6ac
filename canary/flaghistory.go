package canary

import (
	"cmp"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/gitgate/gitgate/backends"
	"github.com/gitgate/gitgate/flags"
)

// StagesFromFlags fills rc with each operation's stage from the flag file
// at path (flags.Route) and, from its change log, when each stage began
// (flags.StageStart) and the timeline of route changes, kill switches,
// automatic rollbacks and drills in rc's period. Without a flag file (path
// empty or missing) the report takes the stages from the ledger.
func StagesFromFlags(path string, rc *ReportConfig) error {
	if path == "" {
		return nil
	}
	f, err := flags.Load(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("the flag file: %w", err)
	}
	rc.Stages, rc.StageSince = map[backends.Op]int{}, map[backends.Op]time.Time{}
	for _, op := range rc.Ops {
		rc.Stages[op] = f.Route(string(op))
	}
	changes, err := flags.ReadChanges(flags.ChangeLogPath(path))
	if err != nil {
		return fmt.Errorf("the flag file's change log: %w", err)
	}
	for _, op := range rc.Ops {
		if t := flags.StageStart(changes, string(op)); !t.IsZero() {
			rc.StageSince[op] = t
		}
	}
	for _, c := range changes {
		if c.At.Before(rc.Since) || !c.At.Before(rc.Until) {
			continue
		}
		if e, ok := changeEvent(c); ok {
			rc.Events = append(rc.Events, e)
		}
	}
	return nil
}

// changeEvent turns a change-log record into a timeline event.
func changeEvent(c flags.Change) (Event, bool) {
	e := Event{At: c.At.UTC(), Stage: -1, What: cmp.Or(c.Summary, string(c.Kind)+" "+c.From+" → "+c.To)}
	if c.Reason != "" {
		e.What += " (" + c.Reason + ")"
	}
	if c.Op != flags.AllOps {
		e.Op = backends.Op(c.Op)
	}
	drill := strings.Contains(strings.ToLower(c.By+" "+c.Reason), "drill")
	switch c.Kind {
	case flags.ChangeRoute:
		e.Kind = EventStage
		if p, err := strconv.Atoi(strings.TrimSuffix(c.To, "%")); err == nil {
			e.Stage = p
		}
		if strings.Contains(c.By, "automatic rollback") {
			e.Kind = EventRollback
		}
	case flags.ChangeKill, flags.ChangeOverride:
		e.Kind = EventRelease
		if c.To == "on" || strings.HasPrefix(c.To, "kill") {
			e.Kind = EventKill
		}
	case flags.ChangeShadow, flags.ChangeNone:
		e.Kind = EventOther
	default:
		return e, false
	}
	if drill {
		e.Kind = EventDrill
	}
	return e, true
}
