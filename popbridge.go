// Package popbridge holds what the popbridge binary embeds: the small
// sample archive that `popbridge demo` serves (testdata/demo, hand-made).
// The program itself lives in cmd/popbridge.
package popbridge

import "embed"

// DemoArchive is a sample Thunderbird "Local Folders" tree.
//
//go:embed all:testdata/demo
var DemoArchive embed.FS
