// Mozilla User Preferences
user_pref("mail.root.none-rel", "[ProfD]Mail");
