package control

import (
	"errors"

	"github.com/popbridge/popbridge/oauth"
)

// ConsentTexts returns, when err says that the user must sign in (again)
// in the browser (an *oauth.ConsentError in its chain), the message in
// every language the console speaks; nil otherwise.
func ConsentTexts(err error) map[string]string {
	var ce *oauth.ConsentError
	if !errors.As(err, &ce) {
		return nil
	}
	return map[string]string{"en": ce.Text("en"), "ja": ce.Text("ja")}
}
