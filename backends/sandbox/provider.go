// Package sandbox is where git runs: the Provider interface that creates,
// finds, runs commands in and destroys sandboxes, the Manager that binds each
// project (or agent) to a sandbox and reaps idle ones, and the binding store
// that says which sandbox holds which workspace.
//
// Providers live in sub-packages: local (a directory tree per sandbox on this
// machine) and e2b (E2B microVMs).
package sandbox

import (
	"context"
	"errors"
	"time"
)

// Owner is whom a sandbox belongs to: a project, or one agent of a project
// when sandboxes are per agent. A sandbox never serves another owner.
type Owner struct {
	Project string
	Agent   string // empty when sandboxes are per project
}

// String returns "project" or "project/agent".
func (o Owner) String() string {
	if o.Agent == "" {
		return o.Project
	}
	return o.Project + "/" + o.Agent
}

// Info describes a sandbox.
type Info struct {
	ID    string
	Owner Owner
	// Root is the absolute path, as seen by commands run in the sandbox, of
	// the directory gitgate keeps its files under (home, work trees, git
	// directories).
	Root    string
	Created time.Time
}

// ErrGone marks errors of providers that found the sandbox itself gone
// (it died, or the provider ended it): the manager forgets it, and the
// executor replaces it on the workspace's next operation.
var ErrGone = errors.New("sandbox: the sandbox is gone")

// SecretWriter is implemented by providers whose far side logs command
// requests (E2B's envd logs arguments, environment and standard input):
// secrets such as a project's git token then reach the sandbox as a file,
// which the command reads and gitgate removes right after it.
type SecretWriter interface {
	// WriteSecret writes data to the absolute path (in a directory only
	// the sandbox's user can enter).
	WriteSecret(ctx context.Context, id, path string, data []byte) error
}

// Coster is implemented by providers that bill sandboxes by the second:
// CostPerSecond is what the sandbox costs while it runs (its vCPUs and
// memory at the configured prices), 0 when unknown.
type Coster interface {
	CostPerSecond(id string) float64
}

// CreateOptions configures a new sandbox.
type CreateOptions struct {
	Owner Owner
	TTL   time.Duration // how long the sandbox may stay idle; the provider may enforce it itself
}

// ExecRequest runs one program in a sandbox. No shell is involved.
type ExecRequest struct {
	Path string   // absolute program path inside the sandbox
	Args []string // arguments after the program name
	// Env is the complete environment; nothing is inherited.
	Env   []string
	Dir   string // working directory inside the sandbox; "" means Root
	Stdin []byte // nil means an empty stdin
	// Timeout bounds the run; the whole process group is killed when it
	// passes. Zero means only ctx bounds it.
	Timeout time.Duration
	// MaxOutput caps the bytes kept of stdout and of stderr each; the rest is
	// counted but dropped. Zero means 1 MiB.
	MaxOutput int
	// SkipStdout, if positive, drops the first SkipStdout bytes of stdout
	// as they arrive, without keeping them (they count in
	// StdoutTotalBytes but not as truncation): MaxOutput then caps what is
	// kept after them. Paging through a long output costs memory for the
	// page only, whatever its offset.
	SkipStdout int64
	// OnStderr, if set, receives stderr as it arrives (for progress).
	OnStderr func(chunk []byte)
	// Background asks for the lowest CPU priority (shadow work), where the
	// provider can set it.
	Background bool
	// MaxFileBytes, if positive, caps the size of every file the command
	// and the processes it starts write (RLIMIT_FSIZE): a write past it
	// fails and the writer gets SIGXFSZ, which ends it. Zero: no cap.
	MaxFileBytes int64
	// Around are the file operations done in the sandbox just before the
	// program starts and just after it ends (see Around). Every provider
	// does them; where commands run remotely (E2B) they travel with the
	// command, so that they cost no round trip of their own.
	Around Around
}

// Around is what a provider does around one command (ExecRequest.Around),
// in this order: Guard, Remove, Create, the measures of Disk (and the refusal or
// the file-size limit they give), the program, the measures of Disk
// again, Head, Read and List. Paths are absolute sandbox paths under the
// sandbox's Root. A failure of Remove or Create is the call's error (the
// program does not run); what is read after the program is read whatever
// its exit code.
type Around struct {
	// Guard, if set, stops everything first: nothing is removed, created
	// or run (AroundResult.Stopped) when it holds.
	Guard Guard
	// Remove are trees removed before the program starts, as RemoveAll
	// removes them (nothing to remove is no error).
	Remove []string
	// Create are empty files created (an existing one emptied), with their
	// parent directories, after Remove.
	Create []string
	// Disk are paths whose disk use is measured, as DiskUser.DiskUsage
	// measures them, before the program starts and after it ends
	// (AroundResult.DiskBefore, DiskAfter), with limits: see DiskLimit.
	Disk []DiskLimit
	// Head is a git directory whose HEAD is read after the program ends,
	// with the ref file HEAD names and, when that file does not exist,
	// packed-refs (AroundResult.Files, by absolute path).
	Head string
	// Read are files read after the program ends, the first MaxAroundRead
	// bytes of each (AroundResult.Files).
	Read []string
	// List is a directory whose names are listed after the program ends,
	// up to MaxAroundList of them (AroundResult.Names).
	List string
}

// Guard is a condition that stops a command (Around.Guard): the path If
// exists and the path Unless (if set) does not. A zero Guard never holds.
type Guard struct {
	If, Unless string
}

// Limits of what Around reads.
const (
	MaxAroundRead = 1 << 20
	MaxAroundList = 1000
)

// DiskLimit is a path measured around a command (Around.Disk).
type DiskLimit struct {
	Path string
	// Max, if positive, is the path's limit in bytes: when the use
	// measured before the program is Max or more, the program does not
	// run (AroundResult.Refused).
	Max int64
	// CapsFiles makes the room left under Max before the program starts
	// its file-size limit (as ExecRequest.MaxFileBytes; the least of the
	// rooms, and of MaxFileBytes, when several apply).
	CapsFiles bool
}

// Empty reports whether a asks for nothing.
func (a Around) Empty() bool {
	return a.Guard == Guard{} && len(a.Remove) == 0 && len(a.Create) == 0 && len(a.Disk) == 0 && a.Head == "" && len(a.Read) == 0 && a.List == ""
}

// FileCap is the file-size limit a command runs under: the least of
// maxFile (0: none) and the rooms Disk's CapsFiles limits leave given the
// measures before it (0 when nothing caps).
func (a Around) FileCap(maxFile int64, before []int64) int64 {
	limit := maxFile
	for i, d := range a.Disk {
		if !d.CapsFiles || d.Max <= 0 || i >= len(before) {
			continue
		}
		if room := d.Max - before[i]; limit == 0 || room < limit {
			limit = room
		}
	}
	return limit
}

// Full reports whether a measure before the command finds a path at or
// past its limit (the command is then refused).
func (a Around) Full(before []int64) bool {
	for i, d := range a.Disk {
		if d.Max > 0 && i < len(before) && before[i] >= d.Max {
			return true
		}
	}
	return false
}

// AroundResult is what Around gave.
type AroundResult struct {
	// After says that the reads after the program (Head, Read, List) were
	// done; when false (the program did not run, or the provider could not
	// tell what it read) the caller reads what it needs itself.
	After bool
	// Stopped says that the Guard held: nothing was done.
	Stopped bool
	// Refused says that the program did not run: a path of Disk was at or
	// past its limit (DiskBefore says which).
	Refused bool
	// DiskBefore and DiskAfter are the measures of Disk's paths, in its
	// order; nil when not measured (DiskAfter: the program did not run, or
	// a measure failed), and the caller then measures itself.
	DiskBefore, DiskAfter []int64
	// Files holds the files read (Head, Read) by absolute path; a file
	// that does not exist (or is not a regular file) has no entry.
	Files map[string][]byte
	// Names are the names in List ("." and ".." excepted), nil when it
	// does not exist.
	Names []string
}

// DiskUser is implemented by providers that can measure disk use in a
// sandbox, so that transfers are stopped at a size limit while they run.
type DiskUser interface {
	// DiskUsage returns, for each absolute sandbox path (under the
	// sandbox's Root), the bytes allocated to the files under it, each
	// path measured on its own and a file hard-linked several times under
	// it counted once (what the links really use); 0 for a path that does
	// not exist. Each call is one round trip to the sandbox at most.
	DiskUsage(ctx context.Context, id string, paths []string) ([]int64, error)
}

// ExecResult is a finished run. A non-zero exit code is not an error.
type ExecResult struct {
	Stdout, Stderr   []byte
	ExitCode         int
	StdoutTruncated  bool // stdout went on past what MaxOutput kept
	StderrTruncated  bool
	StdoutTotalBytes int64 // all of stdout: skipped, kept and dropped
	// Around is what the request's Around gave.
	Around AroundResult
}

// FileData is (a window of) a file.
type FileData struct {
	Data []byte
	Size int64 // size of the whole file
}

// Entry is one directory entry, with Path relative to the listed root.
type Entry struct {
	Path string
	Type string // "file", "dir" or "symlink"
	Size int64
}

// Provider creates and operates sandboxes. Errors carry a backends.Category.
//
// File operations take a root (an absolute sandbox path) and a path relative
// to it; providers refuse paths that leave the root, including through
// symbolic links.
type Provider interface {
	// Name identifies the provider in metrics and logs ("local", "e2b").
	Name() string
	Create(ctx context.Context, opts CreateOptions) (Info, error)
	// Find returns the live sandboxes of owner.
	Find(ctx context.Context, owner Owner) ([]Info, error)
	// Lookup returns a live sandbox by id, also one another process created
	// (when the provider can reach it); not_found otherwise.
	Lookup(ctx context.Context, id string) (Info, error)
	Exec(ctx context.Context, id string, req ExecRequest) (ExecResult, error)
	ReadFile(ctx context.Context, id, root, rel string, offset, limit int64) (FileData, error)
	// WriteFile atomically replaces (or creates) a regular file, creating
	// parent directories; created reports whether it did not exist before.
	WriteFile(ctx context.Context, id, root, rel string, data []byte) (created bool, err error)
	ListDir(ctx context.Context, id, root, rel string, recursive bool, max int) ([]Entry, error)
	// Remove deletes a file or an empty directory; existed reports whether
	// there was anything to delete.
	Remove(ctx context.Context, id, root, rel string) (existed bool, err error)
	// RemoveAll deletes a directory tree given by its absolute sandbox path,
	// which must lie under the sandbox's Root.
	RemoveAll(ctx context.Context, id, path string) error
	// SetTTL extends the sandbox's life to ttl from now.
	SetTTL(ctx context.Context, id string, ttl time.Duration) error
	Destroy(ctx context.Context, id string) error
}
