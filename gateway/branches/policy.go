package branches

import (
	"fmt"
	"path"
	"slices"
	"strings"

	"github.com/gitgate/gitgate/backends"
)

// AgentPlaceholder in a prefix stands for the pushing agent's name.
const AgentPlaceholder = "<agent>"

// Reason says why a push was refused (the reason label of
// gitgate_branch_pushes_refused_total).
type Reason string

// The reasons a push is refused.
const (
	ReasonProtected Reason = "protected" // the branch matches a protected pattern or is the remote's default
	ReasonPrefix    Reason = "prefix"    // the branch lacks the required prefix
)

// Rules is one project's branch policy.
type Rules struct {
	// Protected are path.Match patterns ("main", "release/*") of branches
	// agents may not push to. The remote's default branch is always
	// protected besides them.
	Protected []string
	// Prefix, if set, is required at the start of every branch an agent
	// pushes; AgentPlaceholder is replaced by the agent's name
	// ("agent/<agent>/").
	Prefix string
}

// Policy is the branch policy of every project: Default, with each
// project's own Rules adding protected patterns and replacing the prefix
// when it sets one.
type Policy struct {
	Default  Rules
	Projects map[string]Rules
}

// DefaultProtected are the patterns protected when none are configured.
var DefaultProtected = []string{"main", "master"}

// Rules returns the rules of project.
func (p Policy) Rules(project string) Rules {
	r := Rules{Protected: slices.Clone(p.Default.Protected), Prefix: p.Default.Prefix}
	if own, ok := p.Projects[project]; ok {
		r.Protected = append(r.Protected, own.Protected...)
		if own.Prefix != "" {
			r.Prefix = own.Prefix
		}
	}
	return r
}

// ValidatePattern checks a protected-branch pattern.
func ValidatePattern(pattern string) error {
	if strings.TrimSpace(pattern) == "" {
		return fmt.Errorf("empty pattern")
	}
	if _, err := path.Match(pattern, ""); err != nil {
		return fmt.Errorf("pattern %q: %w", pattern, err)
	}
	return nil
}

// ProtectedBy returns the rule protecting branch ("" when none does):
// the pattern it matches, or "the remote's default branch".
func (r Rules) ProtectedBy(branch, defaultBranch string) string {
	if defaultBranch != "" && branch == defaultBranch {
		return "the remote's default branch"
	}
	for _, p := range r.Protected {
		if ok, _ := path.Match(p, branch); ok {
			return fmt.Sprintf("protected pattern %q", p)
		}
	}
	return ""
}

// AgentPrefix is the prefix required of agent's branches ("" for none).
func (r Rules) AgentPrefix(agent string) string {
	return strings.ReplaceAll(r.Prefix, AgentPlaceholder, agent)
}

// Check tells whether agent may push to branch of project, whose remote's
// default branch is defaultBranch (empty if unknown). A refusal is a
// backends.Forbidden error that names the branch and the rule and says
// what to do instead.
func (r Rules) Check(project, agent, branch, defaultBranch string) (Reason, error) {
	suggestion := r.suggest(agent)
	if rule := r.ProtectedBy(branch, defaultBranch); rule != "" {
		return ReasonProtected, backends.Errorf(backends.Forbidden,
			"branch %q is protected in project %q (%s): agents may not push to it; push your work to a branch of your own, such as %q, and have it merged by a pull request",
			branch, project, rule, suggestion)
	}
	if pre := r.AgentPrefix(agent); pre != "" && !strings.HasPrefix(branch, pre) {
		return ReasonPrefix, backends.Errorf(backends.Forbidden,
			"branch %q does not start with %q, which project %q requires of your branches: create a branch such as %q (checkout with create) and push that",
			branch, pre, project, suggestion)
	}
	return "", nil
}

// suggest names a branch agent may push to.
func (r Rules) suggest(agent string) string {
	if pre := r.AgentPrefix(agent); pre != "" {
		return pre + "<topic>"
	}
	return "agent/" + agent + "/<topic>"
}
