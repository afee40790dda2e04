//go:build race

package test

// raceEnabled says whether the test binary was built with -race; full-size
// runs skip under it (make test runs them in a separate step without -race).
const raceEnabled = true
