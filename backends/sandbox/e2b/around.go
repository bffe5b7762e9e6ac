package e2b

import (
	"bytes"
	"strconv"
	"strings"

	"github.com/gitgate/gitgate/backends"
	"github.com/gitgate/gitgate/backends/sandbox"
)

// A command's Around (sandbox.Around) runs in the sandbox, in the same
// shell as the command (aroundScript), so that it costs no round trip of
// its own: the removals and the files created before the program, the
// disk measures before and after it, and the files and names read after it
// travel back on stderr, after a random mark line (ExecRequest.Trailer)
// that ends the program's own stderr. envd streams each pipe in order
// (e2b-dev/infra packages/envd/internal/services/process/handler:
// one reader per pipe), so the program's stderr, all written before the
// shell writes the mark, comes before it.
//
// The trailer is records, one a line, each beginning with a letter:
//
//	S            the guard held: nothing was done
//	X            preparing (Remove, Create, a measure) failed; nothing ran
//	B n n ...    the measures before the program ("x": one failed)
//	R            refused: a path was at its limit; nothing ran
//	A n n ...    the measures after it
//	H size       HEAD, its size bytes follow (then a newline)
//	G ref size   the ref HEAD names, from its file
//	P size       packed-refs (when the ref's file does not exist)
//	F i size     Read[i]
//	L size       List's names, one a line
//	E            the end: the trailer is whole
//
// Paths are never echoed back (the local E2B maps them): records name
// what they hold by position.

// aroundScript: $1 the mark; $2 the trees to remove, $3 the files to
// create, $4 the disk limits ("max caps path"), one a line each; $5 the
// file-size limit (0: none); $6 the git directory whose HEAD to read;
// $7 the files to read, one a line; $8 the directory to list; $9 and
// ${10} the guard's paths (sandbox.Guard); then the program and its
// arguments.
const aroundScript = `set -f; mark=$1 rm_=$2 mk=$3 dk=$4 cap=$5 hd=$6 rd=$7 ls=$8 gi=$9 gu=${10}; shift 10
NL='
'
t() { printf '%s\n' "$*" >&2; }
fail() { printf '%s' "$mark" >&2; t X; t E; exit 125; }
du1() { [ -e "$1" ] || [ -L "$1" ] || { echo 0; return; }; n=$(/usr/bin/du -s -B1 -- "$1" 2>/dev/null); n=${n%%[!0-9]*}; echo "${n:-x}"; }
measure() { out=; IFS=$NL; for l in $dk; do unset IFS; p=${l#* * }; out="$out $(du1 "$p")"; IFS=$NL; done; unset IFS; }
file() { [ -f "$2" ] || return 0; n=$(/usr/bin/wc -c <"$2") || return 0; t "$1 $n"; /usr/bin/head -c 1048576 -- "$2" >&2; printf '\n' >&2; }
if [ -n "$gi" ] && { [ -e "$gi" ] || [ -L "$gi" ]; } && { [ -z "$gu" ] || { [ ! -e "$gu" ] && [ ! -L "$gu" ]; }; }; then
  printf '%s' "$mark" >&2; t S; t E; exit 0
fi
IFS=$NL
for f in $rm_; do /bin/rm -rf -- "$f" || fail; done
for f in $mk; do /bin/mkdir -p -- "${f%/*}" && : >"$f" || fail; done
unset IFS
full=
if [ -n "$dk" ]; then
  measure; before=$out
  case "$before" in *x*) fail ;; esac
  set -- $before "$@"; IFS=$NL
  for l in $dk; do
    unset IFS; m=${l%% *}; r=${l#* }; c=${r%% *}; u=$1; shift
    if [ "$m" -gt 0 ]; then
      [ "$u" -lt "$m" ] || full=1
      if [ "$c" = 1 ] && { [ "$cap" -eq 0 ] || [ $((m-u)) -lt "$cap" ]; }; then cap=$((m-u)); fi
    fi
    IFS=$NL
  done
  unset IFS
fi
if [ -n "$full" ]; then printf '%s' "$mark" >&2; t B$before; t R; t E; exit 0; fi
if [ "$cap" -gt 0 ]; then ` + prlimitPath + ` --fsize="$cap" -- "$@"; else "$@"; fi
x=$?
printf '%s' "$mark" >&2
[ -z "$dk" ] || { t B$before; measure; t A$out; }
if [ -n "$hd" ]; then
  file H "$hd/HEAD"
  h=$(/usr/bin/head -c 4096 -- "$hd/HEAD" 2>/dev/null)
  case "$h" in "ref: "*) r=${h#ref: }; r=${r%%"$NL"*}
    case "$r" in refs/*) if [ -f "$hd/$r" ]; then file "G $r" "$hd/$r"; else file P "$hd/packed-refs"; fi ;; esac ;;
  esac
fi
i=0; IFS=$NL
for f in $rd; do unset IFS; file "F $i" "$f"; i=$((i+1)); IFS=$NL; done
unset IFS
if [ -n "$ls" ] && [ -d "$ls" ] && l=$(/bin/ls -A -- "$ls"); then n=$(printf '%s' "$l" | /usr/bin/wc -c); t "L $n"; printf '%s\n' "$l" >&2; fi
t E
case $x in 137|143|153) ulimit -c 0; trap - TERM; kill -$((x-128)) $$ ;; esac
exit $x`

// aroundArgs wraps cmd, args in aroundScript for a, with the file-size
// limit maxFile; the mark ends the program's stderr.
func aroundArgs(a sandbox.Around, maxFile int64, mark string, cmd string, args []string) ([]string, error) {
	var disk []string
	for _, d := range a.Disk {
		caps := "0"
		if d.CapsFiles {
			caps = "1"
		}
		disk = append(disk, strconv.FormatInt(max(d.Max, 0), 10)+" "+caps+" "+d.Path)
	}
	lists := [][]string{a.Remove, a.Create, disk, a.Read, {a.Head, a.List, a.Guard.If, a.Guard.Unless}}
	for _, l := range lists {
		for _, p := range l {
			if strings.ContainsAny(p, "\n\x00") {
				return nil, backends.Errorf(backends.Internal, "e2b: a path around a command holds a newline")
			}
		}
	}
	return append([]string{"-c", aroundScript, "sh", mark, strings.Join(a.Remove, "\n"), strings.Join(a.Create, "\n"),
		strings.Join(disk, "\n"), strconv.FormatInt(max(maxFile, 0), 10), a.Head, strings.Join(a.Read, "\n"), a.List, a.Guard.If, a.Guard.Unless, cmd}, args...), nil
}

// parseAround reads the trailer of a command run under aroundScript.
// prepared reports whether everything before the program was done (else
// the program did not run); the result's After is false when the trailer
// is not whole.
func parseAround(a sandbox.Around, trailer []byte) (out sandbox.AroundResult, prepared bool) {
	if trailer == nil {
		return out, false
	}
	rest := trailer
	line := func() (string, bool) {
		i := bytes.IndexByte(rest, '\n')
		if i < 0 {
			return "", false
		}
		l := string(rest[:i])
		rest = rest[i+1:]
		return l, true
	}
	body := func(n int64) ([]byte, bool) {
		k := min(n, sandbox.MaxAroundRead)
		if int64(len(rest)) < k+1 || rest[k] != '\n' {
			return nil, false
		}
		d := append([]byte{}, rest[:k]...)
		rest = rest[k+1:]
		return d, true
	}
	prepared = true
	for {
		l, ok := line()
		if !ok {
			return out, prepared
		}
		kind, arg, _ := strings.Cut(l, " ")
		switch {
		case kind == "S":
			out.Stopped = true
		case kind == "X":
			prepared = false
		case kind == "E":
			out.After = prepared && !out.Refused && !out.Stopped
			return out, prepared
		case kind == "R":
			out.Refused = true
		case kind == "B", kind == "A":
			n, ok := numbers(arg, len(a.Disk))
			if kind == "B" {
				if !ok {
					return out, false
				}
				out.DiskBefore = n
			} else if ok {
				out.DiskAfter = n
			}
		default:
			f := strings.Fields(arg)
			if len(f) == 0 {
				return out, prepared
			}
			size, err := strconv.ParseInt(f[len(f)-1], 10, 64)
			if err != nil {
				return out, prepared
			}
			data, ok := body(size)
			if !ok {
				return out, prepared
			}
			if out.Files == nil {
				out.Files = map[string][]byte{}
			}
			switch kind {
			case "H":
				out.Files[a.Head+"/HEAD"] = data
			case "P":
				out.Files[a.Head+"/packed-refs"] = data
			case "G":
				if len(f) == 2 && strings.HasPrefix(f[0], "refs/") {
					out.Files[a.Head+"/"+f[0]] = data
				}
			case "F":
				if i, err := strconv.Atoi(f[0]); err == nil && i >= 0 && i < len(a.Read) {
					out.Files[a.Read[i]] = data
				}
			case "L":
				names := []string{}
				for name := range strings.SplitSeq(string(data), "\n") {
					if name != "" && len(names) < sandbox.MaxAroundList {
						names = append(names, name)
					}
				}
				out.Names = names
			}
		}
	}
}

// numbers parses want space-separated byte counts.
func numbers(s string, want int) ([]int64, bool) {
	f := strings.Fields(s)
	if len(f) != want {
		return nil, false
	}
	out := make([]int64, want)
	for i, x := range f {
		n, err := strconv.ParseInt(x, 10, 64)
		if err != nil {
			return nil, false
		}
		out[i] = n
	}
	return out, true
}

// aroundFailed is the error of a command whose preparation failed.
func aroundFailed(res ExecResult) error {
	return backends.Errorf(backends.Internal, "e2b: preparing the sandbox for the command failed (exit %d): %s", res.ExitCode, strings.TrimSpace(string(res.Stderr)))
}
