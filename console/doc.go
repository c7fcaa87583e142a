// Package console is popbridge's local web console: set up, watch and
// finish the move in a browser, in Japanese or English.
//
// It is a client of the control API (control.API) like the CLI: every
// page reads and changes popbridge through it, never through the backend.
// Pages are html/template with a little JavaScript (assets/console.js)
// and Server-Sent Events for live updates; everything is embedded in the
// binary, nothing is fetched from anywhere else and there is no build
// step.
//
// Implementation notes (security):
//
//   - The console listens on a loopback address only (Listen refuses
//     anything else), and every request must name localhost or a loopback
//     address in its Host header, so a web page cannot reach it through a
//     DNS name that it points at 127.0.0.1 (DNS rebinding).
//   - The way in is a URL with a one-time token (LoginURL; printed by
//     popbridge and opened in the browser). Using it sets a session cookie
//     (HttpOnly, SameSite=Strict, per console port) and the token is gone.
//   - Every request that changes something carries the session's CSRF
//     token (header X-CSRF-Token, or a csrf form field for the plain forms)
//     and must not come from another site (Origin, Sec-Fetch-Site).
//   - A strict Content-Security-Policy: scripts, styles and images from the
//     console itself only, no inline script or style, no frames.
//   - Secrets are write-only: the API never returns a stored password, hash
//     or token, so no page can show one. The one password a page shows is a
//     device password the user just generated, once.
//   - Nothing runs while nobody looks: the only long-lived work is an open
//     page's event stream. Close ends those streams, so that quitting
//     popbridge (Settings, "Quit popbridge") is not held up by an open page;
//     the page then sees the console go and says popbridge has stopped.
package console
