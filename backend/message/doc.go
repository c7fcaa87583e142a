// Package message holds pure functions over the bytes of one message as the
// bridge serves it (RFC 5322, CRLF line ends): fingerprints for dedup,
// INTERNALDATE selection, the ENVELOPE and BODYSTRUCTURE of FETCH with a
// compact cache codec, and SEARCH matching.
//
// Implementation notes:
//
//   - Nothing here panics on bad input. Every exported function is total: a
//     malformed header, a broken MIME tree, an unknown charset or plain
//     garbage gives a sensible fallback, never an error for the whole
//     operation. Exported entry points also recover from panics in the
//     libraries they call.
//   - Header parsing is our own and lenient: a field is "name: value" with
//     folded continuation lines; a line without a colon is skipped (not an
//     error, unlike net/textproto), and the header ends at the first empty
//     line (CRLF CRLF or LF LF).
//   - ENVELOPE strings stay raw (RFC 2047 encoded words are not decoded), as
//     IMAP servers send them (RFC 3501 7.4.2). go-imap's encoder only
//     Q-encodes strings that are not plain ASCII, so raw encoded words reach
//     the client unchanged.
//   - MIME multipart splitting follows RFC 2046 5.1.1 with Go's
//     mime/multipart rules for what a delimiter line is ("--" boundary, then
//     only linear white space); the CRLF before a delimiter belongs to the
//     delimiter. A missing close delimiter ends the last part at the end of
//     its parent. Sizes in BODYSTRUCTURE are those of the served bytes, and
//     BodySection walks the same tree, so BODY[n] is exactly as long as the
//     BODYSTRUCTURE says, broken MIME included.
//   - SEARCH (RFC 3501 6.4.4) compares text case-insensitively (Unicode full
//     case folding) on decoded text: RFC 2047 words in headers, transfer
//     encodings and charsets in bodies. Dates compare calendar dates only,
//     each in its own zone.
package message
