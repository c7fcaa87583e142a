package providers

import "regexp"

// t makes a bilingual text.
func t(ja, en string) map[string]string { return map[string]string{"ja": ja, "en": en} }

var (
	digits  = regexp.MustCompile(`^[0-9]{1,6}$`)
	account = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{1,30}[a-z0-9]$`)
)

// The presets. Each comment names what the settings are based on.
var presets = []Preset{
	// Google's help "Read Gmail messages on other email clients using
	// POP/IMAP" (support.google.com/mail/answer/7126229) and Thunderbird's
	// ISPDB entry: IMAP 993, POP 995, SMTP 465 (or 587), full address as
	// the user name. Password logins need 2-Step Verification and an app
	// password (myaccount.google.com/apppasswords); OAuth2 works too.
	{
		ID: "gmail", Name: t("Gmail", "Gmail"),
		Domains:  []string{"gmail.com", "googlemail.com"},
		IMAPHost: "imap.gmail.com", IMAPPort: 993, IMAPTLS: TLSImplicit,
		POPHost: "pop.gmail.com", POPPort: 995, POPTLS: TLSImplicit,
		SMTPHost: "smtp.gmail.com", SMTPPort: 465, SMTPTLS: TLSImplicit,
		Username: UsernameEmail,
		Help: t("Gmail の設定 → 「すべての設定を表示」→「メール転送と POP/IMAP」で IMAP を有効にしてください。",
			"In Gmail, Settings → See all settings → Forwarding and POP/IMAP: enable IMAP."),
		AppPassword: true, OAuth2: OAuth2Google,
		AppPasswordHelp: t("Google アカウントの通常のパスワードでは接続できません。Google アカウントで 2 段階認証プロセスを有効にし、「アプリ パスワード」(myaccount.google.com/apppasswords) で 16 文字のパスワードを作って、ここに入力してください。または「Google でサインイン」を使ってください。",
			"Your normal Google password does not work here. Turn on 2-Step Verification for your Google Account, create a 16-character app password at myaccount.google.com/apppasswords and enter it here, or use \"Sign in with Google\"."),
	},
	// Microsoft's "POP, IMAP, and SMTP settings for Outlook.com" and
	// Thunderbird's ISPDB entry (hotmail.com): IMAP/POP
	// outlook.office365.com, SMTP smtp-mail.outlook.com 587 STARTTLS.
	// Outlook.com refuses passwords for IMAP/POP since September 2024
	// (modern authentication only); Microsoft 365 tenants generally too.
	// Business domains on Microsoft 365 cannot be told from the address:
	// the user picks this preset by hand (onmicrosoft.com is matched).
	{
		ID: "microsoft", Name: t("Outlook.com / Microsoft 365", "Outlook.com / Microsoft 365"),
		Domains: []string{"outlook.com", "outlook.jp", "hotmail.com", "hotmail.co.jp", "live.com", "live.jp", "live.co.jp",
			"msn.com", "windowslive.com", "onmicrosoft.com"},
		IMAPHost: "outlook.office365.com", IMAPPort: 993, IMAPTLS: TLSImplicit,
		POPHost: "outlook.office365.com", POPPort: 995, POPTLS: TLSImplicit,
		SMTPHost: "smtp-mail.outlook.com", SMTPPort: 587, SMTPTLS: TLSStartTLS,
		Username: UsernameEmail, OAuth2: OAuth2Microsoft,
		Help: t("Microsoft はパスワードでの IMAP/POP 接続を受け付けません。「Microsoft でサインイン」ボタンを使ってください。会社や学校の Microsoft 365 では、管理者が IMAP を無効にしている場合があります。",
			"Microsoft no longer accepts passwords for IMAP/POP: use \"Sign in with Microsoft\". For a work or school Microsoft 365 account, your administrator may have turned IMAP off."),
	},
	// Apple's "iCloud Mail server settings for other email client apps"
	// (support.apple.com/HT202304) and Thunderbird's ISPDB entry (me.com):
	// IMAP imap.mail.me.com 993, SMTP smtp.mail.me.com 587 STARTTLS, no
	// POP; the user name is the name part of the address (Apple: try the
	// full address if that fails); an app-specific password is required.
	{
		ID: "icloud", Name: t("iCloud メール", "iCloud Mail"),
		Domains:  []string{"icloud.com", "me.com", "mac.com"},
		IMAPHost: "imap.mail.me.com", IMAPPort: 993, IMAPTLS: TLSImplicit,
		SMTPHost: "smtp.mail.me.com", SMTPPort: 587, SMTPTLS: TLSStartTLS,
		Username: UsernameLocal,
		UsernameHint: t("メールアドレスの @ より前の部分です(うまくいかない場合はアドレス全体を試してください)。",
			"The part of your address before the @ (if that fails, try the whole address)."),
		AppPassword: true,
		AppPasswordHelp: t("Apple アカウントのパスワードでは接続できません。account.apple.com にサインインし、「サインインとセキュリティ」→「App 用パスワード」で作ったパスワードを入力してください(2 ファクタ認証が必要です)。",
			"Your Apple Account password does not work here. Sign in at account.apple.com, go to Sign-In and Security → App-Specific Passwords, create one and enter it here (two-factor authentication is required)."),
	},
	// Yahoo! JAPAN's help "メールソフトの設定(IMAP/POP/SMTP)": IMAP
	// imap.mail.yahoo.co.jp 993, POP pop.mail.yahoo.co.jp 995, SMTP
	// smtp.mail.yahoo.co.jp 465, all SSL; the user name is the Yahoo!
	// JAPAN ID; access from other programs must be switched on first.
	{
		ID: "yahoo-jp", Name: t("Yahoo!メール(Yahoo! JAPAN)", "Yahoo! JAPAN Mail"),
		Domains:  []string{"yahoo.co.jp"},
		IMAPHost: "imap.mail.yahoo.co.jp", IMAPPort: 993, IMAPTLS: TLSImplicit,
		POPHost: "pop.mail.yahoo.co.jp", POPPort: 995, POPTLS: TLSImplicit,
		SMTPHost: "smtp.mail.yahoo.co.jp", SMTPPort: 465, SMTPTLS: TLSImplicit,
		Username: UsernameID,
		UsernameHint: t("Yahoo! JAPAN ID です(メールアドレスの @ より前と同じことが多いです)。",
			"Your Yahoo! JAPAN ID (often the part of your address before the @)."),
		Help: t("Yahoo!メールの「設定・利用規約」→「メールの設定」→「IMAP/POP/SMTPアクセスとメール転送」で、Yahoo! JAPAN 公式サービス以外からのアクセスを有効にしてください。パスワードを設定していない(SMS 認証だけの)ID は、先にパスワードを設定してください。",
			"In Yahoo! JAPAN Mail, Settings → Mail settings → IMAP/POP/SMTP access and forwarding: allow access from services other than Yahoo! JAPAN's. An ID that signs in by SMS only needs a password set first."),
	},
	// Yahoo! BB (SoftBank's ISP) addresses: POP ybbpop.mail.yahoo.co.jp
	// 995 and SMTP ybbsmtp.mail.yahoo.co.jp 465, from Yahoo! BB's mail
	// setup pages as remembered, not re-checked here. No IMAP host is
	// offered for them: the address serves as an old POP account.
	{
		ID: "ybb", Name: t("Yahoo! BB", "Yahoo! BB"),
		Domains: []string{"ybb.ne.jp"},
		POPHost: "ybbpop.mail.yahoo.co.jp", POPPort: 995, POPTLS: TLSImplicit,
		SMTPHost: "ybbsmtp.mail.yahoo.co.jp", SMTPPort: 465, SMTPTLS: TLSImplicit,
		Username: UsernameEmail,
		Help: t("Yahoo! BB のアドレスは古い POP アカウントとして取り込めます。新しい IMAP のメールボックスには別のサービスを選んでください。",
			"A Yahoo! BB address can be fetched as the old POP account; choose another service for the new IMAP mailbox."),
	},
	// docomo's "ドコモメール IMAPインターフェース仕様書" (v4.3): IMAP
	// imap.spmode.ne.jp 993, SMTP smtp.spmode.ne.jp 465, TLS; the user
	// name is the d ACCOUNT ID and the password the "IMAP専用パスワード"
	// (required since 2019-2020). docomo mail has no POP.
	{
		ID: "docomo", Name: t("ドコモメール", "docomo mail"),
		Domains:  []string{"docomo.ne.jp"},
		IMAPHost: "imap.spmode.ne.jp", IMAPPort: 993, IMAPTLS: TLSImplicit,
		SMTPHost: "smtp.spmode.ne.jp", SMTPPort: 465, SMTPTLS: TLSImplicit,
		Username:     UsernameID,
		UsernameHint: t("d アカウントの ID です(メールアドレスではありません)。", "Your d ACCOUNT ID (not the email address)."),
		Help: t("ドコモメールをほかのアプリで使う設定(「ドコモメール設定サイト」→「マルチデバイス利用設定」など)を先に済ませてください。",
			"First allow docomo mail in other apps (docomo mail settings site → multi-device settings)."),
		AppPassword: true,
		AppPasswordHelp: t("d アカウントのパスワードではなく、「IMAP専用パスワード」を使います。My docomo またはドコモメール設定サイトで確認・発行してください。",
			"Use the \"IMAP password\" (IMAP専用パスワード), not your d ACCOUNT password. Look it up or issue it in My docomo or on the docomo mail settings site."),
	},
	// au: @au.com and @ezweb.ne.jp. au documents IMAP only through the
	// profile it gives iPhones, which points at imap.ezweb.ne.jp 993 and
	// smtp.ezweb.ne.jp 465; third-party notes agree that imap.au.com does
	// not answer IMAP. Not confirmed against au's own pages: "Test
	// connection" decides. au mail has no POP.
	{
		ID: "au", Name: t("au メール", "au Mail"),
		Domains:  []string{"au.com", "ezweb.ne.jp"},
		IMAPHost: "imap.ezweb.ne.jp", IMAPPort: 993, IMAPTLS: TLSImplicit,
		SMTPHost: "smtp.ezweb.ne.jp", SMTPPort: 465, SMTPTLS: TLSImplicit,
		Username: UsernameID,
		UsernameHint: t("au から案内されたメールのユーザー名です(au ID の設定画面や、iPhone 用の設定情報に載っています)。",
			"The mail user name au gave you (shown with your au ID settings or the iPhone setup information)."),
		AppPassword:     true,
		AppPasswordHelp: t("au ID のパスワードではなく、au から発行されたメール用のパスワードを使います。", "Use the mail password au issued, not your au ID password."),
		Help: t("au メールをほかのアプリで使えるかどうかは契約によります。接続テストが通らない場合は au のサポートで確認してください。",
			"Whether au Mail works in other apps depends on your plan. If the connection test fails, ask au support."),
	},
	// au one net (the ISP): POP and SMTP on mail.auone-net.jp with SSL,
	// the user name being the address; as remembered from au one net's
	// setup pages, not re-checked here. Old @dion.ne.jp addresses moved
	// to the same servers. Serves as an old POP account.
	{
		ID: "auone-net", Name: t("au one net", "au one net"),
		Domains: []string{"auone-net.jp", "dion.ne.jp"},
		POPHost: "mail.auone-net.jp", POPPort: 995, POPTLS: TLSImplicit,
		SMTPHost: "mail.auone-net.jp", SMTPPort: 465, SMTPTLS: TLSImplicit,
		Username: UsernameEmail,
		Help: t("au one net のアドレスは古い POP アカウントとして取り込めます。新しい IMAP のメールボックスには別のサービスを選んでください。",
			"An au one net address can be fetched as the old POP account; choose another service for the new IMAP mailbox."),
	},
	// SoftBank "Eメール(i)" (@i.softbank.jp): IMAP imap.softbank.jp 993,
	// SMTP smtp.softbank.jp 465, with the user name and password shown in
	// My SoftBank for use in other mail apps. From SoftBank's setup page
	// for PC mail apps as remembered; no POP.
	{
		ID: "softbank", Name: t("ソフトバンク Eメール(i)", "SoftBank Email (i)"),
		Domains:  []string{"i.softbank.jp", "softbank.jp"},
		IMAPHost: "imap.softbank.jp", IMAPPort: 993, IMAPTLS: TLSImplicit,
		SMTPHost: "smtp.softbank.jp", SMTPPort: 465, SMTPTLS: TLSImplicit,
		Username: UsernameID,
		UsernameHint: t("My SoftBank の「メール設定」→「Eメール(i)」で確認できるユーザー名です。",
			"The user name shown in My SoftBank under Mail settings → Email (i)."),
		AppPassword: true,
		AppPasswordHelp: t("My SoftBank で確認できる Eメール(i) 用のパスワードを使います(SoftBank ID のパスワードではありません)。",
			"Use the Email (i) password shown in My SoftBank (not your SoftBank ID password)."),
	},
	// OCN's "メールソフトの設定" and Thunderbird's ISPDB entry: IMAP
	// imap.ocn.ne.jp 993, POP pop.ocn.ne.jp 995, SMTP smtp.ocn.ne.jp 465,
	// the whole address as user name, for every xx.ocn.ne.jp address.
	{
		ID: "ocn", Name: t("OCN", "OCN"),
		Domains:  []string{"ocn.ne.jp"},
		IMAPHost: "imap.ocn.ne.jp", IMAPPort: 993, IMAPTLS: TLSImplicit,
		POPHost: "pop.ocn.ne.jp", POPPort: 995, POPTLS: TLSImplicit,
		SMTPHost: "smtp.ocn.ne.jp", SMTPPort: 465, SMTPTLS: TLSImplicit,
		Username: UsernameEmail,
		Help: t("OCN メールのパスワードは、OCN マイページの「メールアドレス・パスワードの確認」で確認できます。",
			"The OCN mail password is shown in OCN My Page under mail address and password."),
	},
	// BIGLOBE's "メールソフトの設定" and Thunderbird's ISPDB entry: POP
	// and SMTP mail.biglobe.ne.jp (995/465 SSL), the same host for IMAP
	// 993, the whole address as user name.
	{
		ID: "biglobe", Name: t("BIGLOBE", "BIGLOBE"),
		Domains:  []string{"biglobe.ne.jp"},
		IMAPHost: "mail.biglobe.ne.jp", IMAPPort: 993, IMAPTLS: TLSImplicit,
		POPHost: "mail.biglobe.ne.jp", POPPort: 995, POPTLS: TLSImplicit,
		SMTPHost: "mail.biglobe.ne.jp", SMTPPort: 465, SMTPTLS: TLSImplicit,
		Username: UsernameEmail,
	},
	// So-net's support pages: IMAP imap.so-net.ne.jp 993 (the IMAP
	// option must be applied for first), POP pop.so-net.ne.jp 995, SMTP
	// mail.so-net.ne.jp 587 STARTTLS; the POP host as remembered.
	{
		ID: "so-net", Name: t("So-net", "So-net"),
		Domains:  []string{"so-net.ne.jp"},
		IMAPHost: "imap.so-net.ne.jp", IMAPPort: 993, IMAPTLS: TLSImplicit,
		POPHost: "pop.so-net.ne.jp", POPPort: 995, POPTLS: TLSImplicit,
		SMTPHost: "mail.so-net.ne.jp", SMTPPort: 587, SMTPTLS: TLSStartTLS,
		Username: UsernameEmail,
		Help: t("So-net で IMAP を使うには、先に So-net の会員サポートで IMAP の利用を申し込んでください。",
			"To use IMAP with So-net, first apply for IMAP in So-net's member support pages."),
	},
	// @nifty's mail manual (mail.nifty.com/info/manual) and Thunderbird's
	// ISPDB entry: IMAP imap.nifty.com 993, POP pop.nifty.com 995, SMTP
	// smtp.nifty.com 465 SSL, the whole address as user name.
	{
		ID: "nifty", Name: t("@nifty", "@nifty"),
		Domains:  []string{"nifty.com"},
		IMAPHost: "imap.nifty.com", IMAPPort: 993, IMAPTLS: TLSImplicit,
		POPHost: "pop.nifty.com", POPPort: 995, POPTLS: TLSImplicit,
		SMTPHost: "smtp.nifty.com", SMTPPort: 465, SMTPTLS: TLSImplicit,
		Username: UsernameEmail,
	},
	// Xserver's manual "メールソフトの設定": the host is the server's
	// name from the setup notice ("sv***.xserver.jp", also in the server
	// panel's server information), IMAP 993, POP 995, SMTP 465 (SSL) or
	// 143/110/587 STARTTLS, the whole address as user name. Initial
	// domains are <account>.xsrv.jp.
	{
		ID: "xserver", Name: t("エックスサーバー", "Xserver"),
		Domains:  []string{"xsrv.jp"},
		IMAPPort: 993, IMAPTLS: TLSImplicit, POPPort: 995, POPTLS: TLSImplicit, SMTPPort: 465, SMTPTLS: TLSImplicit,
		Template: "sv{server}.xserver.jp", TemplateFields: []string{"server"},
		TemplateHint: t("サーバー番号は、設定完了のお知らせメールやサーバーパネルの「サーバー情報」に「sv12345.xserver.jp」の形で載っています。数字の部分を入力してください。",
			"The server number is in the setup notice email and under Server information in the server panel, as \"sv12345.xserver.jp\". Enter the digits."),
		Username: UsernameEmail,
		fieldRE:  map[string]*regexp.Regexp{"server": digits},
	},
	// Sakura Internet's rental server manual: the mail server is the
	// initial domain "<account>.sakura.ne.jp", IMAP 993, POP 995, SMTP 587
	// STARTTLS (465 SSL also), the whole address as user name.
	{
		ID: "sakura", Name: t("さくらのレンタルサーバ", "Sakura rental server"),
		Domains:  []string{"sakura.ne.jp"},
		IMAPPort: 993, IMAPTLS: TLSImplicit, POPPort: 995, POPTLS: TLSImplicit, SMTPPort: 587, SMTPTLS: TLSStartTLS,
		Template: "{account}.sakura.ne.jp", TemplateFields: []string{"account"},
		TemplateHint: t("初期ドメイン「アカウント名.sakura.ne.jp」のアカウント名です。仮登録完了のお知らせやコントロールパネルに載っています。",
			"The account name of your initial domain \"account.sakura.ne.jp\", shown in the sign-up notice and the control panel."),
		Username: UsernameEmail,
		fieldRE:  map[string]*regexp.Regexp{"account": account},
	},
	// ConoHa WING's mail manual: the mail server is shown in the control
	// panel (Mail → mail settings) as "mail<number>.conoha.ne.jp", IMAP
	// 993, POP 995, SMTP 465, the whole address as user name.
	{
		ID: "conoha", Name: t("ConoHa WING", "ConoHa WING"),
		IMAPPort: 993, IMAPTLS: TLSImplicit, POPPort: 995, POPTLS: TLSImplicit, SMTPPort: 465, SMTPTLS: TLSImplicit,
		Template: "mail{server}.conoha.ne.jp", TemplateFields: []string{"server"},
		TemplateHint: t("コントロールパネルの「メール管理」→ メールアドレスの「メールソフト設定」に「mail22.conoha.ne.jp」の形で載っているサーバー名の数字を入力してください。",
			"Enter the number of the server name shown in the control panel under Mail → the address's mail client settings, as \"mail22.conoha.ne.jp\"."),
		Username: UsernameEmail,
		fieldRE:  map[string]*regexp.Regexp{"server": digits},
	},
	// Lolipop's manual "メールソフトの設定": IMAP imap.lolipop.jp 993, POP
	// pop.lolipop.jp 995, SMTP smtp.lolipop.jp 465, the whole address as
	// user name, whatever the domain. Chosen by hand (own domains).
	{
		ID: "lolipop", Name: t("ロリポップ!", "Lolipop!"),
		IMAPHost: "imap.lolipop.jp", IMAPPort: 993, IMAPTLS: TLSImplicit,
		POPHost: "pop.lolipop.jp", POPPort: 995, POPTLS: TLSImplicit,
		SMTPHost: "smtp.lolipop.jp", SMTPPort: 465, SMTPTLS: TLSImplicit,
		Username: UsernameEmail,
		Help:     t("独自ドメインのアドレスでも、サーバー名は同じです。", "The server names are the same for addresses on your own domain."),
	},
}
