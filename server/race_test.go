//go:build race

package server

// raceEnabled: bcrypt at cost 12 takes seconds under the race detector.
const raceEnabled = true
