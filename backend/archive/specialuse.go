package archive

import "strings"

// SpecialUse maps a well-known folder name (case-insensitive, English and
// Japanese) to its SPECIAL-USE attribute (RFC 6154): `\Sent`, `\Drafts`,
// `\Trash`, `\Junk` or `\Archive`; "" if the name is not one of them.
// "Outbox" / "Unsent Messages" hold mail not yet sent and are not `\Sent`.
func SpecialUse(name string) string {
	return specialUseNames[strings.ToLower(strings.TrimSpace(name))]
}

var specialUseNames = map[string]string{
	"sent":          `\Sent`,
	"sent items":    `\Sent`,
	"sent messages": `\Sent`,
	"sent mail":     `\Sent`,
	"送信済み":          `\Sent`,
	"送信済みアイテム":      `\Sent`,
	"送信済みメール":       `\Sent`,
	"送信済みトレイ":       `\Sent`,

	"drafts": `\Drafts`,
	"draft":  `\Drafts`,
	"下書き":    `\Drafts`,

	"trash":            `\Trash`,
	"deleted items":    `\Trash`,
	"deleted messages": `\Trash`,
	"bin":              `\Trash`,
	"ごみ箱":              `\Trash`,
	"ゴミ箱":              `\Trash`,
	"削除済みアイテム":         `\Trash`,

	"junk":        `\Junk`,
	"spam":        `\Junk`,
	"junk e-mail": `\Junk`,
	"junk email":  `\Junk`,
	"bulk mail":   `\Junk`,
	"迷惑メール":       `\Junk`,

	"archive":  `\Archive`,
	"archives": `\Archive`,
	"アーカイブ":    `\Archive`,
}
