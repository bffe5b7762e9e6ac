package deploycheck

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// UnitBinary is the gitgate path the units' Exec lines use; CheckSystemd
// verifies copies that use the binary it is given instead.
const UnitBinary = "/usr/local/bin/gitgate"

// CheckSystemd verifies the units (*.service, *.timer) of dir: copies with
// UnitBinary replaced by gitgate pass `systemd-analyze verify` with no
// message at all (it exits 0 on an unknown directive or a bad value and
// only says so), every gitgate command line of an Exec line parses
// (CheckArgs), and the GITGATE_* variables of Environment= lines are
// configuration keys (CheckConfig, over the embedded defaults). It returns
// the number of units.
func CheckSystemd(dir, gitgate string) (int, error) {
	units, err := filepath.Glob(filepath.Join(dir, "*.service"))
	if err != nil {
		return 0, err
	}
	timers, _ := filepath.Glob(filepath.Join(dir, "*.timer"))
	units = append(units, timers...)
	if len(units) == 0 {
		return 0, fmt.Errorf("no unit in %s", dir)
	}
	tmp, err := os.MkdirTemp("", "deploycheck-systemd-")
	if err != nil {
		return 0, err
	}
	defer func() { _ = os.RemoveAll(tmp) }()
	var errs []error
	var copies []string
	for _, u := range units {
		text, err := os.ReadFile(u)
		if err != nil {
			return 0, err
		}
		if err := checkUnitCommands(gitgate, text); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", filepath.Base(u), err))
		}
		if strings.HasSuffix(u, ".timer") {
			if err := timerTarget(u, text); err != nil {
				errs = append(errs, err)
			}
		}
		c := filepath.Join(tmp, filepath.Base(u))
		if err := os.WriteFile(c, bytes.ReplaceAll(text, []byte(UnitBinary), []byte(gitgate)), 0o644); err != nil {
			return 0, err
		}
		copies = append(copies, c)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "systemd-analyze", append([]string{"verify", "--man=no"}, copies...)...)
	out, err := cmd.CombinedOutput()
	msg := strings.TrimSpace(strings.ReplaceAll(string(out), tmp+"/", ""))
	switch {
	case err != nil:
		errs = append(errs, fmt.Errorf("systemd-analyze verify: %w: %s", err, msg))
	case msg != "": // exit 0 with messages: a directive ignored
		errs = append(errs, fmt.Errorf("systemd-analyze verify: %s", msg))
	}
	return len(units), errors.Join(errs...)
}

// checkUnitCommands checks the gitgate command lines and the GITGATE_*
// Environment= assignments of a unit.
func checkUnitCommands(gitgate string, unit []byte) error {
	var errs []error
	env := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(unit))
	for sc.Scan() {
		key, value, ok := strings.Cut(strings.TrimSpace(sc.Text()), "=")
		if !ok || strings.HasPrefix(key, "#") {
			continue
		}
		switch {
		case strings.HasPrefix(key, "Exec"):
			fields := strings.Fields(strings.TrimLeft(value, "@-:+!"))
			if len(fields) > 1 && fields[0] == UnitBinary {
				if err := CheckArgs(gitgate, fields[1:]); err != nil {
					errs = append(errs, err)
				}
			}
		case key == "Environment":
			for _, a := range strings.Fields(value) {
				name, v, _ := strings.Cut(strings.Trim(a, `"`), "=")
				if strings.HasPrefix(name, "GITGATE_") {
					env[name] = v
				}
			}
		}
	}
	if len(env) > 0 {
		if err := CheckConfig(gitgate, "", nil, env); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// timerTarget checks that the unit a timer starts (Unit=, by default the
// service of the same name) is in the timer's directory: systemd-analyze
// verify does not say when it is missing.
func timerTarget(path string, text []byte) error {
	target := strings.TrimSuffix(filepath.Base(path), ".timer") + ".service"
	sc := bufio.NewScanner(bytes.NewReader(text))
	for sc.Scan() {
		if v, ok := strings.CutPrefix(strings.TrimSpace(sc.Text()), "Unit="); ok {
			target = strings.TrimSpace(v)
		}
	}
	if _, err := os.Stat(filepath.Join(filepath.Dir(path), target)); err != nil {
		return fmt.Errorf("%s: starts %s, which is not in deploy/systemd", filepath.Base(path), target)
	}
	return nil
}
