// Unknown keys and variables: a misspelt key in the file or a GITGATE_*
// variable that sets nothing is refused by name, with the closest valid one.

package configs

import (
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"

	"github.com/gitgate/gitgate/internal/suggest"
	"github.com/spf13/viper"
)

// envPrefix starts every environment variable that overrides a
// configuration key: GITGATE_<KEY>, dots written as underscores.
const envPrefix = "GITGATE_"

// nonConfigVariables are the documented GITGATE_* variables that are not
// configuration keys, with what reads them. Besides these, the variables
// that *_env keys name (project tokens, the Approach 2 token, DSNs) are
// never configuration.
var nonConfigVariables = map[string]string{
	"GITGATE_ADMIN_TOKEN": "the admin token `gitgate kill --admin` sends (--admin-token-env)",
}

// replacedKeys are sections and keys an earlier version had, with what
// replaced them: a file or variable still setting one is refused with
// this, rather than as an unknown key.
var replacedKeys = map[string]string{
	"canary.rollback": "the automatic rollback now uses the judge of `gitgate canary advance` and `gitgate report`, " +
		"configured in canary.judge (false_alarm_rate, miss_rate, min_calls, error_floor, latency_floor, max_mismatch_rate, " +
		"max_cost_ratio, min_stage_time; see the embedded gitgate.yaml): it compares Approach 2 with Approach 1 over the same " +
		"stage instead of window, min_calls, max_error_rate and max_p95",
}

// nonConfigPrefixes start GITGATE_* variables that are test settings, read
// by the tests and never by gitgate.
var nonConfigPrefixes = []string{"GITGATE_TEST_", "GITGATE_LIVE_", "GITGATE_E2B_"}

// checkFileKeys refuses a key of the configuration file (settings, as
// viper reads it: nested maps, lower-case keys) that Config does not have,
// naming it with its full path and the closest valid key. Keys of
// map-valued sections (projects.<name>) are free; their values are checked.
func checkFileKeys(settings map[string]any) error {
	return checkKeys("", settings, reflect.TypeFor[Config]())
}

func checkKeys(path string, value any, t reflect.Type) error {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.Struct:
		m, ok := value.(map[string]any)
		if !ok {
			return nil // a scalar where a section belongs: decoding says so
		}
		fields := structKeys(t)
		for _, k := range sortedKeys(m) {
			ft, ok := fields[strings.ToLower(k)]
			if why, gone := replacedKeys[joinKey(path, strings.ToLower(k))]; !ok && gone {
				return fmt.Errorf("configuration key %s was replaced: %s", joinKey(path, k), why)
			}
			if !ok {
				return unknownKey(joinKey(path, k), k, path, sortedKeys(fields))
			}
			if err := checkKeys(joinKey(path, k), m[k], ft); err != nil {
				return err
			}
		}
	case reflect.Map:
		m, ok := value.(map[string]any)
		if !ok {
			return nil
		}
		for _, k := range sortedKeys(m) {
			if err := checkKeys(joinKey(path, k), m[k], t.Elem()); err != nil {
				return err
			}
		}
	case reflect.Slice, reflect.Array:
		list, ok := value.([]any)
		if !ok {
			return nil
		}
		for i, e := range list {
			if err := checkKeys(fmt.Sprintf("%s[%d]", path, i), e, t.Elem()); err != nil {
				return err
			}
		}
	}
	return nil
}

// structKeys maps the configuration keys of a struct (its mapstructure
// tags, lower case) to their types; fields tagged "-" are not keys.
func structKeys(t reflect.Type) map[string]reflect.Type {
	keys := map[string]reflect.Type{}
	for i := range t.NumField() {
		f := t.Field(i)
		tag, _, _ := strings.Cut(f.Tag.Get("mapstructure"), ",")
		if tag == "-" || !f.IsExported() {
			continue
		}
		if tag == "" {
			tag = f.Name
		}
		keys[strings.ToLower(tag)] = f.Type
	}
	return keys
}

func unknownKey(key, name, parent string, siblings []string) error {
	if near, ok := suggest.Closest(name, siblings); ok {
		return fmt.Errorf("unknown configuration key %s (did you mean %s?)", key, joinKey(parent, near))
	}
	where := "at the top level"
	if parent != "" {
		where = "under " + parent
	}
	return fmt.Errorf("unknown configuration key %s (the keys %s are %s)", key, where, strings.Join(siblings, ", "))
}

// checkEnvironment refuses a GITGATE_* variable of environ that is none
// of: a configuration key's variable (GITGATE_<KEY> for a key of v, the
// defaults merged with the file); a variable a *_env key names (a token or
// DSN); a documented non-configuration variable (nonConfigVariables,
// nonConfigPrefixes). The error names the closest configuration variable.
func checkEnvironment(environ []string, v *viper.Viper) error {
	keyOf := map[string]string{} // variable → key
	for _, k := range v.AllKeys() {
		keyOf[envName(k)] = k
	}
	named := map[string]bool{}
	for _, k := range v.AllKeys() {
		if strings.HasSuffix(k, "_env") {
			if name := v.GetString(k); name != "" {
				named[name] = true
			}
		}
	}
	var bad []string
	for _, kv := range environ {
		name, _, _ := strings.Cut(kv, "=")
		if !strings.HasPrefix(name, envPrefix) || keyOf[name] != "" || named[name] || nonConfigVariables[name] != "" ||
			slices.ContainsFunc(nonConfigPrefixes, func(p string) bool { return strings.HasPrefix(name, p) }) {
			continue
		}
		bad = append(bad, name)
	}
	if len(bad) == 0 {
		return nil
	}
	slices.Sort(bad)
	name := bad[0]
	for key, why := range replacedKeys {
		if strings.HasPrefix(name, envName(key)+"_") {
			return fmt.Errorf("configuration variable %s sets a key of %s, which was replaced: %s", name, key, why)
		}
	}
	msg := fmt.Sprintf("unknown configuration variable %s: GITGATE_* variables set configuration keys (GITGATE_<KEY>, dots as underscores)", name)
	if near, ok := suggest.Closest(strings.TrimPrefix(name, envPrefix), trimAll(sortedKeys(keyOf), envPrefix)); ok {
		msg += fmt.Sprintf(" (did you mean %s%s, key %s?)", envPrefix, near, keyOf[envPrefix+near])
	} else if near, ok := suggest.Closest(name, sortedKeys(named)); ok {
		msg += fmt.Sprintf(" (did you mean %s, named by a *_env key?)", near)
	}
	if len(bad) > 1 {
		msg += fmt.Sprintf("; also unknown: %s", strings.Join(bad[1:], ", "))
	}
	return fmt.Errorf("%s", msg)
}

// envName is the variable that overrides key.
func envName(key string) string {
	return envPrefix + strings.ToUpper(strings.ReplaceAll(key, ".", "_"))
}

func joinKey(parent, k string) string {
	if parent == "" {
		return k
	}
	return parent + "." + k
}

func sortedKeys[V any](m map[string]V) []string { return slices.Sorted(maps.Keys(m)) }

func trimAll(list []string, prefix string) []string {
	out := make([]string, len(list))
	for i, s := range list {
		out[i] = strings.TrimPrefix(s, prefix)
	}
	return out
}

// leafKeys lists the keys of t that hold values (not sections), with
// their paths below prefix. Map- and list-valued sections of structs
// (projects, agents) are not listed: their keys come from the file.
func leafKeys(prefix string, t reflect.Type) []string {
	var keys []string
	for _, k := range sortedKeys(structKeys(t)) {
		ft := structKeys(t)[k]
		switch {
		case ft.Kind() == reflect.Struct:
			keys = append(keys, leafKeys(joinKey(prefix, k), ft)...)
		case (ft.Kind() == reflect.Map || ft.Kind() == reflect.Slice) && ft.Elem().Kind() == reflect.Struct:
		default:
			keys = append(keys, joinKey(prefix, k))
		}
	}
	return keys
}

// bindEnvironment makes every key of Config overridable as GITGATE_<KEY>,
// including keys the defaults file does not list (viper's AutomaticEnv
// only sees keys it already knows).
func bindEnvironment(v *viper.Viper) {
	t := reflect.TypeFor[Config]()
	keys := leafKeys("", t)
	// The entries of map-valued sections the file has (projects.<name>):
	// each of their keys too.
	for k, ft := range structKeys(t) {
		if ft.Kind() == reflect.Map && ft.Elem().Kind() == reflect.Struct {
			for name := range v.GetStringMap(k) {
				keys = append(keys, leafKeys(joinKey(k, name), ft.Elem())...)
			}
		}
	}
	for _, k := range keys {
		_ = v.BindEnv(k, envName(k)) // only fails without a key
	}
}
