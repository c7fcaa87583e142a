package upstream

import (
	"encoding/json"

	"github.com/emersion/go-sasl"
)

// XOAUTH2 is Google's and Microsoft's OAuth2 SASL mechanism name.
const XOAUTH2 = "XOAUTH2"

// oauthError is the JSON a server sends as a challenge when it rejects an
// XOAUTH2 or OAUTHBEARER token (RFC 7628 section 3.2.2).
type oauthError struct {
	Status  string `json:"status"`
	Schemes string `json:"schemes"`
	Scope   string `json:"scope"`
}

// xoauth2Client implements XOAUTH2 (go-sasl has only OAUTHBEARER):
// the initial response is "user=" user ^A "auth=Bearer " token ^A ^A. A
// rejected token comes back as a challenge carrying a JSON error, to which
// the client answers with an empty response; the server then says NO.
type xoauth2Client struct {
	user, token string
	failure     *oauthError // the server's JSON error, if any
}

func (c *xoauth2Client) Start() (string, []byte, error) {
	return XOAUTH2, []byte("user=" + c.user + "\x01auth=Bearer " + c.token + "\x01\x01"), nil
}

func (c *xoauth2Client) Next(challenge []byte) ([]byte, error) {
	var e oauthError
	if json.Unmarshal(challenge, &e) == nil {
		c.failure = &e
	}
	return []byte{}, nil
}

// oauthBearerClient is go-sasl's OAUTHBEARER client with a different Next:
// go-sasl returns an error for the server's error challenge, which makes
// imapclient abandon the AUTHENTICATE half-way (the server still waits for
// a response and the connection is useless). RFC 7628 section 3.2.3 wants
// the dummy response ^A instead, after which the server answers NO.
type oauthBearerClient struct {
	sasl.Client
	failure *oauthError
}

func newOAuthBearerClient(user, token, host string, port int) *oauthBearerClient {
	return &oauthBearerClient{Client: sasl.NewOAuthBearerClient(&sasl.OAuthBearerOptions{
		Username: user,
		Token:    token,
		Host:     host,
		Port:     port,
	})}
}

func (c *oauthBearerClient) Next(challenge []byte) ([]byte, error) {
	var e oauthError
	if json.Unmarshal(challenge, &e) == nil {
		c.failure = &e
	}
	return []byte{0x01}, nil
}
