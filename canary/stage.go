package canary

// Stages are the canary stages: the share (per cent) of an operation's
// workspaces on Approach 2. Whether a stage may advance, must hold or
// roll back is the judge's (Judge).
var Stages = []int{0, 10, 50, 100}

// NextStage returns the stage after current, and false at the last one.
func NextStage(current int) (int, bool) {
	for _, s := range Stages {
		if s > current {
			return s, true
		}
	}
	return current, false
}
