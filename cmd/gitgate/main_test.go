package main

import (
	"testing"

	"github.com/gitgate/gitgate/internal/testkit"
)

// TestMain fails the package's tests when a goroutine outlives them, apart
// from those a closed flags evaluator leaves (testkit.EvaluatorLeftovers).
func TestMain(m *testing.M) { testkit.VerifyTestMain(m, testkit.EvaluatorLeftovers...) }
