package archive

import "testing"

// TestCountPST: the quick count from the contents table equals the number
// of mail messages ScanPST delivers, folder by folder.
func TestCountPST(t *testing.T) {
	for name, data := range map[string][]byte{"unicode": unicodePST(false), "ansi": ansiPST(), "ansi1252": ansi1252PST()} {
		t.Run(name, func(t *testing.T) {
			path := writeTemp(t, name+".pst", data)
			folders, _, err := Walk(path, FormatPST)
			if err != nil {
				t.Fatal(err)
			}
			total := 0
			for _, f := range folders {
				if f.NoSelect {
					continue
				}
				n, err := CountPST(path, f.Ref)
				if err != nil {
					t.Fatalf("%v: %v", f.Path, err)
				}
				stats, _, err := ScanPST(path, f.Ref, func(PSTMessage) error { return nil })
				if err != nil {
					t.Fatal(err)
				}
				if n != stats.Messages {
					t.Errorf("%v: CountPST %d, ScanPST delivered %d", f.Path, n, stats.Messages)
				}
				total += n
			}
			if total == 0 {
				t.Fatal("no messages counted")
			}
			if _, err := CountPST(path, "abc"); err == nil {
				t.Error("CountPST accepted a bad reference")
			}
		})
	}
}
