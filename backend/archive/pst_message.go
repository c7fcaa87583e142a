package archive

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"net/mail"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Rebuilding a PST item as an RFC 5322 / MIME message.
//
//   - Header fields: PR_TRANSPORT_MESSAGE_HEADERS when the item has them
//     (received mail keeps its original fields, Message-ID included) minus
//     the MIME structure fields, which describe the rebuilt body instead;
//     otherwise Date, From, Sender, To, Cc, Bcc, Subject, Message-ID,
//     In-Reply-To and References from properties.
//   - Body: PR_BODY as text/plain, PR_HTML as text/html (both:
//     multipart/alternative). Without PR_HTML, PR_RTF_COMPRESSED is
//     decompressed: encapsulated HTML or text is extracted; genuine RTF is
//     kept as an application/rtf attachment when there is no other body.
//   - Attachments: by value (base64, named), embedded messages as
//     message/rfc822 (rebuilt the same way), images referenced by cid: from
//     the HTML inside multipart/related with their Content-ID.
//   - Text is emitted in UTF-8: Unicode files store UTF-16, ANSI files
//     store 8-bit strings in the item's code page (PR_MESSAGE_CODEPAGE, else
//     PR_INTERNET_CPID), and PR_HTML is in PR_INTERNET_CPID.

const maxEmbedDepth = 8

// message reads and rebuilds item nid. skip is true for a non-mail item.
func (p *pstFile) message(nid uint32, id string) (msg PSTMessage, errs []error, skip bool, err error) {
	n, err := p.node(nid)
	if err != nil {
		return msg, nil, false, err
	}
	props, err := p.openProps(n)
	if err != nil {
		return msg, nil, false, err
	}
	if itemKind(props.str(prMessageClass, 0)) != "" {
		return msg, nil, true, nil
	}
	r := &rebuilder{p: p}
	raw, date := r.build(props, id, 0)
	msg = PSTMessage{ID: id, Raw: raw}

	var flags flagSet
	if f, ok := props.int32(prMessageFlags); ok {
		flags.addIf(f&0x01 != 0, `\Seen`)
		flags.addIf(f&0x08 != 0, `\Draft`)
	}
	verb, _ := props.int32(prLastVerbExecuted)
	icon, _ := props.int32(prIconIndex)
	flags.addIf(verb == 102 || verb == 103 || icon == 261, `\Answered`)
	flags.addIf(verb == 104 || icon == 262, `$Forwarded`)
	if s, ok := props.int32(prFlagStatus); ok && s == 2 {
		flags.add(`\Flagged`)
	}
	msg.Flags = flags.sorted()

	msg.Received = props.time(prDeliveryTime)
	if msg.Received.IsZero() {
		msg.Received = props.time(prClientSubmitTime)
	}
	if msg.Received.IsZero() {
		msg.Received = date
	}
	return msg, r.errs, false, nil
}

type rebuilder struct {
	p        *pstFile
	errs     []error
	embedded int   // embedded messages rebuilt so far
	total    int64 // attachment bytes read so far
}

// maxEmbedded bounds the embedded messages of one item (a damaged file can
// make a few nodes look like an exponential tree of them).
const maxEmbedded = 256

func (r *rebuilder) fail(format string, args ...any) {
	r.errs = append(r.errs, fmt.Errorf(format, args...))
}

// messageCodepage returns the code page of an item's 8-bit strings.
func (p *pstFile) messageCodepage(props *pstProps) int {
	if cp, ok := props.int32(prMessageCodepage); ok && cp > 0 {
		return ansiCodepage(int(cp))
	}
	if cp, ok := props.int32(prInternetCPID); ok && cp > 0 {
		return ansiCodepage(int(cp))
	}
	return p.cp
}

// attachment is an attachment part before it is placed in the tree.
type attachment struct {
	part *mimePart
	cid  string // Content-ID without brackets, "" if none
}

// build rebuilds the message in props; id names its boundaries. date is
// the message's Date (zero if none), for the received time.
func (r *rebuilder) build(props *pstProps, id string, depth int) (raw []byte, date time.Time) {
	cp := r.p.messageCodepage(props)
	b := &builder{id: id}

	text, hasText := "", props.has(prBody)
	if hasText {
		text = props.str(prBody, cp)
	}
	html, hasHTML := r.html(props, cp)
	hasHTML = hasHTML && strings.TrimSpace(html) != "" // an empty PR_HTML is no HTML body
	var extra []*mimePart
	if !hasHTML {
		if c, ok, err := props.bin(prRTFCompressed); err != nil {
			r.fail("RTF body unreadable: %v", err)
		} else if ok && len(c) > 0 {
			rtf, err := decompressRTF(c)
			if err != nil {
				r.fail("RTF body: %v", err)
			}
			if len(rtf) > 0 {
				content, kind := deencapsulateRTF(rtf)
				switch {
				case kind == rtfHTML:
					html, hasHTML = content, true
				case kind == rtfText && !hasText:
					text, hasText = content, true
				case kind == rtfPlain && !hasText:
					extra = append(extra, binaryPart("application/rtf", "body.rtf", "", rtf))
				}
			}
		}
	}

	atts, signed := r.attachments(props, id, depth, html)

	var top *mimePart
	if signed != nil {
		top = signed
	} else {
		var inline, other []*mimePart
		for _, a := range atts {
			if hasHTML && a.cid != "" && strings.Contains(strings.ToLower(html), "cid:"+strings.ToLower(a.cid)) {
				inline = append(inline, a.part)
			} else {
				other = append(other, a.part)
			}
		}
		other = append(other, extra...)
		var htmlPart *mimePart
		if hasHTML {
			htmlPart = textPart("html", html)
			if len(inline) > 0 {
				htmlPart = b.multipart("related", append([]*mimePart{htmlPart}, inline...)...)
				htmlPart.fields[0][1] += "; type=\"text/html\""
			}
		}
		var body *mimePart
		switch {
		case hasText && hasHTML:
			body = b.multipart("alternative", textPart("plain", text), htmlPart)
		case hasHTML:
			body = htmlPart
		case hasText || len(other) == 0:
			body = textPart("plain", text)
		}
		switch {
		case len(other) == 0:
			top = body
		case body == nil:
			top = b.multipart("mixed", other...)
		default:
			top = b.multipart("mixed", append([]*mimePart{body}, other...)...)
		}
	}

	var buf bytes.Buffer
	date = r.header(&buf, props, cp)
	buf.WriteString("MIME-Version: 1.0\r\n")
	top.write(&buf)
	if !bytes.HasSuffix(buf.Bytes(), []byte("\r\n")) {
		buf.WriteString("\r\n")
	}
	return buf.Bytes(), date
}

// html returns the HTML body in UTF-8, its meta charset declarations made
// to say so.
func (r *rebuilder) html(props *pstProps, cp int) (string, bool) {
	typ, b, ok, err := props.raw(prHTML)
	if err != nil {
		r.fail("HTML body unreadable: %v", err)
	}
	if !ok {
		return "", false
	}
	var s string
	switch typ {
	case ptUnicode, ptString8:
		s = decodePSTString(typ, b, cp)
	case ptBinary:
		hcp := 0
		if c, ok := props.int32(prInternetCPID); ok {
			if _, known := codepageEncoding(int(c)); known {
				hcp = int(c)
			}
		}
		if hcp == 0 {
			if m := metaCharset.FindSubmatch(b[:min(len(b), 4096)]); m != nil {
				hcp = charsetCodepage(string(m[2]))
			}
		}
		if hcp == 0 {
			hcp = cp
		}
		s = decodeCodepage(bytes.TrimRight(b, "\x00"), hcp)
	default:
		return "", false
	}
	return fixMetaCharset(s), true
}

var metaCharset = regexp.MustCompile(`(?i)(<meta[^>]*charset\s*=\s*["']?)([A-Za-z0-9_.:-]+)`)

// fixMetaCharset makes the <meta> charset declarations in the first 4 KiB
// of an HTML document say utf-8, as the text now is.
func fixMetaCharset(s string) string {
	head := s[:min(len(s), 4096)]
	if !metaCharset.MatchString(head) {
		return s
	}
	return metaCharset.ReplaceAllString(head, "${1}utf-8") + s[len(head):]
}

// header writes the message's header fields (without MIME-Version and the
// Content-* fields of the body) and returns its date.
func (r *rebuilder) header(buf *bytes.Buffer, props *pstProps, cp int) time.Time {
	subject := props.str(prSubject, cp)
	if len(subject) >= 2 && subject[0] == 0x01 {
		// A subject prefix marker: 0x01 and the prefix length.
		subject = subject[2:]
	}
	date := props.time(prClientSubmitTime)
	if date.IsZero() {
		date = props.time(prDeliveryTime)
	}
	if date.IsZero() {
		date = props.time(prCreationTime)
	}

	have := make(map[string]bool)
	if th := props.str(prTransportHeaders, cp); strings.TrimSpace(th) != "" {
		fields, ok := parseTransportHeaders(th)
		if !ok {
			r.fail("transport headers unparsable; header rebuilt from properties")
		}
		for _, f := range fields {
			have[f.key] = true
			buf.WriteString(f.raw)
		}
		if d := fieldValue(fields, "date"); d != "" {
			if t, err := mail.ParseDate(d); err == nil {
				date = t
			}
		}
	}

	add := func(name, value string) {
		if value != "" && !have[strings.ToLower(name)] {
			writeField(buf, name, value)
		}
	}
	if !date.IsZero() {
		add("Date", formatDate(date))
	}
	from := r.address(props, prSentRepName, prSentRepEmail, prSentRepSMTP)
	sender := r.address(props, prSenderName, prSenderEmail, prSenderSMTP)
	if from == "" {
		from = sender
	}
	add("From", from)
	if sender != "" && sender != from && !have["from"] {
		add("Sender", sender)
	}
	// With transport headers the recipients are the original ones (a
	// message sent only to Bcc has no To); without, the recipient table.
	if len(have) == 0 || !have["to"] && !have["cc"] && !have["bcc"] && !have["from"] {
		to, cc, bcc := r.recipients(props, cp)
		add("To", strings.Join(to, ", "))
		add("Cc", strings.Join(cc, ", "))
		add("Bcc", strings.Join(bcc, ", "))
	}
	add("Subject", encodeWords(subject, false))
	add("Message-ID", msgID(props.str(prInternetMessageID, cp)))
	if !have["from"] {
		add("In-Reply-To", msgIDList(props.str(prInReplyTo, cp)))
		add("References", msgIDList(props.str(prInternetReferences, cp)))
		if imp, ok := props.int32(prImportance); ok && imp != 1 {
			add("Importance", map[bool]string{true: "high", false: "low"}[imp == 2])
		}
	}
	return date
}

// msgIDList returns a list of message IDs (In-Reply-To, References) on
// one line, "" if it holds anything but printable ASCII.
func msgIDList(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if !isPrintableASCII(s) {
		return ""
	}
	return s
}

func msgID(s string) string {
	s = strings.TrimSpace(s)
	if s == "" || strings.ContainsAny(s, " \t\r\n") || !isPrintableASCII(s) {
		return ""
	}
	if !strings.HasPrefix(s, "<") {
		s = "<" + s + ">"
	}
	return s
}

// address formats the mailbox held in the name/type/address/SMTP
// properties, "" if there is none.
func (r *rebuilder) address(props *pstProps, nameID, emailID, smtpID uint16) string {
	cp := r.p.messageCodepage(props)
	name := props.str(nameID, cp)
	addr := props.str(smtpID, cp)
	if !strings.Contains(addr, "@") {
		addr = props.str(emailID, cp)
	}
	return formatAddress(name, addr)
}

// recipients reads the recipient table.
func (r *rebuilder) recipients(props *pstProps, cp int) (to, cc, bcc []string) {
	n, ok := props.h.subs[nidRecipientTable]
	if !ok {
		return
	}
	t, err := r.p.openTable(n)
	if err != nil {
		r.fail("recipient table: %v", err)
		return
	}
	for i := range t.rows {
		kind, _ := t.int32(i, prRecipientType)
		name, _ := t.str(i, prDisplayName, cp)
		addr, _ := t.str(i, prSMTPAddress, cp)
		if !strings.Contains(addr, "@") {
			addr, _ = t.str(i, prEmailAddress, cp)
		}
		a := formatAddress(name, addr)
		if a == "" {
			continue
		}
		switch kind & 0x0F {
		case 2:
			cc = append(cc, a)
		case 3:
			bcc = append(bcc, a)
		default:
			to = append(to, a)
		}
	}
	return
}

// headerField is one field of a parsed header block.
type headerField struct {
	key string // lower-case name
	raw string // the field's lines, CRLF-terminated
}

// mimeStructureFields are dropped from transport headers: they describe the
// original body, not the rebuilt one.
var mimeStructureFields = map[string]bool{
	"mime-version": true, "content-type": true, "content-transfer-encoding": true,
	"content-disposition": true, "content-id": true, "content-description": true,
	"content-location": true, "content-base": true, "content-md5": true, "content-length": true,
}

// parseTransportHeaders splits PR_TRANSPORT_MESSAGE_HEADERS into fields,
// without the MIME structure fields. Lines that are not fields (Outlook's
// "Microsoft Mail Internet Headers Version 2.0" banner, an mbox "From "
// line) are dropped; ok is false when no field is left.
func parseTransportHeaders(s string) ([]headerField, bool) {
	s = crlf(s)
	var fields []headerField
	var cur *headerField
	for len(s) > 0 {
		line := s
		if i := strings.Index(s, "\r\n"); i >= 0 {
			line, s = s[:i+2], s[i+2:]
		} else {
			line, s = s+"\r\n", ""
		}
		if line == "\r\n" {
			if len(fields) > 0 {
				break
			}
			continue
		}
		if line[0] == ' ' || line[0] == '\t' {
			if cur != nil {
				cur.raw += line
			}
			continue
		}
		colon := strings.IndexByte(line, ':')
		if colon <= 0 || !isFieldName(line[:colon]) {
			cur = nil
			continue
		}
		fields = append(fields, headerField{key: strings.ToLower(line[:colon]), raw: line})
		cur = &fields[len(fields)-1]
	}
	out := fields[:0]
	for _, f := range fields {
		if !mimeStructureFields[f.key] {
			out = append(out, f)
		}
	}
	return out, len(fields) > 0
}

func isFieldName(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= ' ' || c >= 0x7f {
			return false
		}
	}
	return true
}

// fieldValue returns the unfolded value of the first field named key.
func fieldValue(fields []headerField, key string) string {
	for _, f := range fields {
		if f.key == key {
			v := f.raw[strings.IndexByte(f.raw, ':')+1:]
			return strings.TrimSpace(strings.ReplaceAll(v, "\r\n", ""))
		}
	}
	return ""
}

// binaryPart makes a base64 attachment part.
func binaryPart(ctype, filename, cid string, data []byte) *mimePart {
	p := &mimePart{ctype: ctype}
	ct := ctype
	if filename != "" {
		ct += "; " + param("name", filename)
	}
	p.fields = append(p.fields, [2]string{"Content-Type", ct}, [2]string{"Content-Transfer-Encoding", "base64"})
	disp := "attachment"
	if cid != "" {
		disp = "inline"
	}
	if filename != "" {
		disp += "; " + param("filename", filename)
	}
	p.fields = append(p.fields, [2]string{"Content-Disposition", disp})
	if cid != "" {
		p.fields = append(p.fields, [2]string{"Content-ID", "<" + cid + ">"})
	}
	p.body = base64Lines(data)
	return p
}

// messagePart makes a message/rfc822 part from a message's bytes.
func messagePart(raw []byte, filename string) *mimePart {
	cte := "7bit"
	for _, c := range raw {
		if c >= 0x80 {
			cte = "8bit"
			break
		}
	}
	p := &mimePart{ctype: "message/rfc822", body: raw}
	p.fields = [][2]string{{"Content-Type", "message/rfc822"}, {"Content-Transfer-Encoding", cte}}
	disp := "attachment"
	if filename != "" {
		disp += "; " + param("filename", filename)
	}
	p.fields = append(p.fields, [2]string{"Content-Disposition", disp})
	return p
}

// Attachment methods (PR_ATTACH_METHOD).
const (
	attachByValue     = 1
	attachByReference = 2
	attachByRefResolv = 3
	attachByRefOnly   = 4
	attachEmbedded    = 5
	attachOLE         = 6
)

// attachments reads the attachment table. signed is the whole body of an
// S/MIME item (whose only attachment is the signed or encrypted entity).
func (r *rebuilder) attachments(props *pstProps, id string, depth int, html string) (atts []attachment, signed *mimePart) {
	n, ok := props.h.subs[nidAttachmentTable]
	if !ok {
		return nil, nil
	}
	t, err := r.p.openTable(n)
	if err != nil {
		r.fail("attachment table: %v", err)
		return nil, nil
	}
	class := strings.ToLower(props.str(prMessageClass, 0))
	cp := r.p.messageCodepage(props)
	for i, row := range t.rows {
		aid, ok := t.int32(i, prLTPRowID)
		if !ok {
			aid = int32(binary.LittleEndian.Uint32(row))
		}
		an, ok := props.h.subs[uint32(aid)]
		if !ok {
			r.fail("attachment %d: not found", i+1)
			continue
		}
		ap, err := r.p.openProps(an)
		if err != nil {
			r.fail("attachment %d: %v", i+1, err)
			continue
		}
		name := ap.str(prAttachLongFilename, cp)
		if name == "" {
			name = ap.str(prAttachFilename, cp)
		}
		label := name
		if label == "" {
			label = ap.str(prDisplayName, cp)
		}
		if label == "" {
			label = strconv.Itoa(i + 1)
		}
		method, _ := ap.int32(prAttachMethod)
		switch method {
		case attachEmbedded:
			if depth >= maxEmbedDepth || r.embedded >= maxEmbedded {
				r.fail("attachment %q: too many or too deeply embedded messages; skipped", label)
				continue
			}
			r.embedded++
			en, err := ap.object(prAttachData)
			if err != nil {
				r.fail("attachment %q: embedded message: %v", label, err)
				continue
			}
			ep, err := r.p.openProps(en)
			if err != nil {
				r.fail("attachment %q: embedded message: %v", label, err)
				continue
			}
			raw, _ := r.build(ep, id+"."+strconv.Itoa(i+1), depth+1)
			atts = append(atts, attachment{part: messagePart(raw, name)})
			continue
		case attachByReference, attachByRefResolv, attachByRefOnly:
			r.fail("attachment %q is a link to a file outside the .pst (%s); not included", label, ap.str(prAttachContentLoc, cp))
			continue
		}
		var data []byte
		if method == attachOLE {
			if on, err := ap.object(prAttachData); err == nil {
				data, err = r.p.data(on.data)
				if err != nil {
					r.fail("attachment %q: %v", label, err)
					continue
				}
			}
		} else {
			var err error
			data, _, err = ap.bin(prAttachData)
			if err != nil {
				r.fail("attachment %q: %v", label, err)
				continue
			}
		}
		r.total += int64(len(data))
		if r.total > 2*r.p.size+1<<20 {
			r.fail("attachment %q: attachments larger than the file; skipped", label)
			continue
		}
		tag := ap.str(prAttachMimeTag, cp)
		if len(t.rows) == 1 && strings.HasPrefix(class, "ipm.note.smime") {
			if p := smimePart(tag, name, data); p != nil {
				return nil, p
			}
		}
		if name == "" {
			name = ap.str(prDisplayName, cp)
		}
		if name == "" && method == attachOLE {
			name = "attachment-" + strconv.Itoa(i+1) + ".bin"
		}
		ctype := attachmentType(tag, name)
		cid := strings.Trim(strings.TrimSpace(ap.str(prAttachContentID, cp)), "<>")
		if ctype == "message/rfc822" {
			if isMessageText(data) {
				atts = append(atts, attachment{part: messagePart([]byte(crlf(string(data))), name)})
				continue
			}
			ctype = "application/octet-stream"
		}
		if cid != "" && !strings.Contains(strings.ToLower(html), "cid:"+strings.ToLower(cid)) {
			// Not referenced by the HTML: an ordinary attachment that keeps
			// its Content-ID.
			p := binaryPart(ctype, name, "", data)
			p.fields = append(p.fields, [2]string{"Content-ID", "<" + cid + ">"})
			atts = append(atts, attachment{part: p})
			continue
		}
		atts = append(atts, attachment{part: binaryPart(ctype, name, cid, data), cid: cid})
	}
	return atts, nil
}

// isMessageText reports whether data can be sent as a message/rfc822 body
// (8bit: no NUL, lines of at most 998 bytes).
func isMessageText(data []byte) bool {
	if bytes.IndexByte(data, 0) >= 0 {
		return false
	}
	for len(data) > 0 {
		i := bytes.IndexAny(data, "\r\n")
		if i < 0 {
			i = len(data)
		}
		if i > 998 {
			return false
		}
		data = data[min(i+1, len(data)):]
	}
	return true
}

// smimePart returns the body of an S/MIME item from its one attachment:
// the multipart/signed entity as it was received (its own header fields
// included), or the application/pkcs7-mime blob. nil if it is neither.
func smimePart(tag, name string, data []byte) *mimePart {
	tag = strings.ToLower(strings.TrimSpace(tag))
	switch {
	case strings.HasPrefix(tag, "multipart/signed"):
		s := crlf(string(data))
		if !strings.HasPrefix(strings.ToLower(s), "content-type:") {
			return nil
		}
		i := strings.Index(s, "\r\n\r\n")
		if i < 0 {
			return nil
		}
		// The entity's own header fields are kept verbatim (less a
		// MIME-Version, written once at the top) and its body untouched:
		// the signature covers the first part, inside the body.
		var head strings.Builder
		skip := false
		for _, line := range strings.SplitAfter(s[:i+2], "\r\n") {
			if line == "" {
				continue
			}
			if line[0] != ' ' && line[0] != '\t' {
				skip = strings.HasPrefix(strings.ToLower(line), "mime-version:")
			}
			if !skip {
				head.WriteString(line)
			}
		}
		return &mimePart{ctype: "multipart/signed", raw: head.String() + s[i+2:]}
	case strings.HasPrefix(tag, "application/pkcs7-mime"), strings.HasPrefix(tag, "application/x-pkcs7-mime"):
		if name == "" {
			name = "smime.p7m"
		}
		return binaryPart("application/pkcs7-mime; smime-type=enveloped-data", name, "", data)
	}
	return nil
}

// object returns the subnode that a PtypObject property points to.
func (c *pstProps) object(id uint16) (pstNode, error) {
	e, ok := c.props[id]
	if !ok {
		return pstNode{}, errors.New("no data")
	}
	if e.typ != ptObject {
		return pstNode{}, fmt.Errorf("property %#04x has type %#x, not object", id, e.typ)
	}
	nid := e.value
	if nid&0x1F == nidTypeHID {
		b, err := c.h.alloc(nid)
		if err != nil {
			return pstNode{}, err
		}
		if len(b) < 4 {
			return pstNode{}, corrupt("object reference of %d bytes", len(b))
		}
		nid = binary.LittleEndian.Uint32(b)
	}
	n, ok := c.h.subs[nid]
	if !ok {
		return pstNode{}, corrupt("object subnode %#x not found", nid)
	}
	return n, nil
}
