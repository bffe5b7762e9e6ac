// Package budget enforces monthly sandbox budgets: an overall one and one
// per project, in US dollars, over what sandboxes cost while they run.
//
// The bill is the sandboxes' lifetimes: E2B charges a running sandbox per
// second for its vCPUs and memory whatever runs in it, so the cost of an
// operation's commands (gitgate_sandbox_cost_usd_total) is a part of its
// sandbox's lifetime cost and is not added again. Provider, a decorator of
// a sandbox.Provider, charges the sandboxes it creates or finds as they
// run (every Interval, not only when they end, so that a long-lived
// sandbox counts) and refuses to create new ones once a budget is spent
// (Action Refuse): the refusal is a resource_exhausted error saying what
// was spent, the limit, when it resets and whom to ask. Sandboxes that
// exist keep serving their workspaces, and a warm pool's sandbox handed
// out is not a creation.
//
// Month-to-date spend lives in a Store shared by a fleet (Redis or
// PostgreSQL; a file for a single machine) so that restarts do not reset
// it. Each sandbox carries a mark in the store up to which it has been
// charged, advanced atomically: two processes that both know a sandbox
// never charge the same second twice. Months are calendar months in UTC.
package budget
