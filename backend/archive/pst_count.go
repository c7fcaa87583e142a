package archive

import (
	"fmt"
	"strconv"
)

// CountPST returns how many mail messages the folder ref (Folder.Ref from
// Walk) of the PST at path holds, from the folder's contents table: no
// message is read or rebuilt, so it is fast enough for a quick scan.
// Contacts, appointments and other non-mail items are not counted.
func CountPST(path, ref string) (int, error) {
	nid64, err := strconv.ParseUint(ref, 10, 32)
	if err != nil || uint32(nid64)&0x1F != nidTypeNormalFolder {
		return 0, fmt.Errorf("pst %s: %q is not a folder reference", path, ref)
	}
	n := 0
	err = withPST(path, func(p *pstFile) error {
		counts, err := p.classCounts(uint32(nid64))
		n = counts[""]
		return err
	})
	if err != nil {
		return n, fmt.Errorf("pst %s: %w", path, err)
	}
	return n, nil
}
