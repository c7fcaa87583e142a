package oauth

import (
	"errors"
	"fmt"
	"html/template"
	"net/http"
)

// ErrConsentNeeded is what every *ConsentError is: the user must sign in
// (again) in the browser.
var ErrConsentNeeded = errors.New("sign-in needed")

// Reasons for a ConsentError.
const (
	ReasonNotSignedIn   = "not-signed-in"  // no stored sign-in for the account
	ReasonRevoked       = "revoked"        // the provider refused the refresh token (invalid_grant)
	ReasonClientChanged = "client-changed" // client_id differs from the one signed in with
	ReasonDeclined      = "declined"       // the user said no in the browser
	ReasonFailed        = "failed"         // the provider reported another error at sign-in
)

// ConsentError asks the user, in plain words, to sign in again.
type ConsentError struct {
	Provider string // "Microsoft", "Google"
	Account  string
	Reason   string
	Detail   string // the provider's error code and description, if any
}

func (e *ConsentError) Is(target error) bool { return target == ErrConsentNeeded }

// ConsentNeeded marks the error for packages that cannot import this one
// (backend/upstream words its hint by it).
func (e *ConsentError) ConsentNeeded() bool { return true }

// Error is the English text (Text("en")) with the provider's detail.
func (e *ConsentError) Error() string {
	s := e.Text("en")
	if e.Detail != "" {
		s += " (" + e.Provider + " said: " + e.Detail + ")"
	}
	return s
}

// Text is the message in a language: "ja" or "en" (anything else).
func (e *ConsentError) Text(lang string) string {
	m, ok := consentTexts[e.Reason]
	if !ok {
		m = consentTexts[ReasonFailed]
	}
	if lang == "ja" {
		return fmt.Sprintf(m.ja, e.Provider, e.Account)
	}
	return fmt.Sprintf(m.en, e.Provider, e.Account)
}

type texts struct{ en, ja string }

// consentTexts: %[1]s is the provider, %[2]s the account.
var consentTexts = map[string]texts{
	ReasonNotSignedIn: {
		en: "popbridge is not signed in to %[2]s at %[1]s yet: run `popbridge login`, or use \"New mailbox\" in the console, and sign in in the browser",
		ja: "%[1]s の %[2]s にまだサインインしていません。コンソールの「新しいメールボックス」または `popbridge login` で、ブラウザからサインインしてください",
	},
	ReasonRevoked: {
		en: "%[1]s no longer accepts popbridge's sign-in for %[2]s (the password was changed, access was removed, or it was unused for too long): sign in again with `popbridge login` or in the console; no mail is lost meanwhile",
		ja: "%[1]s が %[2]s への popbridge のサインインを受け付けなくなりました(パスワードの変更、アクセスの取り消し、または長期間使われなかったため)。`popbridge login` またはコンソールからもう一度サインインしてください。その間もメールは失われません",
	},
	ReasonClientChanged: {
		en: "the client_id for %[1]s in the configuration changed since %[2]s signed in: sign in again with `popbridge login` or in the console",
		ja: "%[2]s がサインインした後に、設定の %[1]s 用 client_id が変わりました。`popbridge login` またはコンソールからもう一度サインインしてください",
	},
	ReasonDeclined: {
		en: "the sign-in to %[2]s at %[1]s was cancelled in the browser, so popbridge cannot reach the mailbox: start the sign-in again and choose Accept (Allow)",
		ja: "%[1]s の %[2]s へのサインインがブラウザで取り消されたため、popbridge はメールボックスに接続できません。もう一度サインインを始めて「承諾(許可)」を選んでください",
	},
	ReasonFailed: {
		en: "%[1]s did not complete the sign-in to %[2]s: start it again; if it keeps failing, check client_id and tenant in [upstream.oauth2]",
		ja: "%[1]s で %[2]s へのサインインが完了しませんでした。もう一度お試しください。繰り返し失敗する場合は [upstream.oauth2] の client_id と tenant を確認してください",
	},
}

// The pages the browser shows after the provider sends it back. Both
// languages on one page: it is shown once, with no way to switch.
type pageText struct{ title, en, ja string }

var (
	pageSignedIn   = pageText{"popbridge: signed in", "Signed in. You can close this tab and go back to popbridge.", "サインインしました。このタブを閉じて popbridge に戻ってください。"}
	pageDeclined   = pageText{"popbridge: sign-in cancelled", "The sign-in was cancelled. Go back to popbridge to try again.", "サインインは取り消されました。popbridge に戻って、もう一度お試しください。"}
	pageFailed     = pageText{"popbridge: sign-in failed", "The sign-in did not complete. Go back to popbridge: it says what happened.", "サインインが完了しませんでした。popbridge に戻ると理由が表示されています。"}
	pageWrongState = pageText{"popbridge: unknown sign-in", "This page does not belong to the sign-in popbridge is waiting for (an old tab?). Go back to popbridge and start the sign-in again.", "このページは popbridge が待っているサインインのものではありません(古いタブかもしれません)。popbridge に戻って、もう一度サインインを始めてください。"}
	pageDone       = pageText{"popbridge: already signed in", "This sign-in is already complete. You can close this tab.", "このサインインはすでに完了しています。このタブを閉じてかまいません。"}
)

var pageTmpl = template.Must(template.New("p").Parse(`<!doctype html>
<html><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">
<title>{{.title}}</title>
<style>body{font-family:system-ui,sans-serif;max-width:36em;margin:4em auto;padding:0 1em;line-height:1.6}</style></head>
<body><p lang="ja">{{.ja}}</p><p lang="en">{{.en}}</p></body></html>
`))

func page(w http.ResponseWriter, status int, p pageText) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'")
	h.Set("Referrer-Policy", "no-referrer")
	w.WriteHeader(status)
	pageTmpl.Execute(w, map[string]string{"title": p.title, "en": p.en, "ja": p.ja})
}
