// Command benchcheck reads `go test -bench` output on its standard input
// and prints, for every performance target whose benchmark ran, one line:
// met, MISSED or info, the figure against its target, and what it is. The
// benchmark output itself is copied to the file named by -raw (appended),
// or to standard error. It exits 1 when a benchmark that ran did not
// report a target's figure, or when no benchmark ran at all.
package main

import (
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/gitgate/gitgate/internal/benchtarget"
)

func main() {
	rawPath := flag.String("raw", "", "append the benchmark output to this file (default: standard error)")
	flag.Parse()
	var raw io.Writer = os.Stderr
	if *rawPath != "" {
		f, err := os.OpenFile(*rawPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
		if err != nil {
			fmt.Fprintln(os.Stderr, "benchcheck:", err)
			os.Exit(2)
		}
		defer f.Close()
		raw = f
	}
	results, err := benchtarget.Parse(os.Stdin, raw)
	if err != nil {
		fmt.Fprintln(os.Stderr, "benchcheck:", err)
		os.Exit(2)
	}
	if len(results) == 0 {
		fmt.Println("ABSENT  no benchmark reported a result (see the benchmark output)")
		os.Exit(1)
	}
	code := 0
	for _, v := range benchtarget.Judge(benchtarget.Targets, results, false) {
		fmt.Println(v.Line())
		if !v.Found {
			code = 1
		}
	}
	os.Exit(code)
}
