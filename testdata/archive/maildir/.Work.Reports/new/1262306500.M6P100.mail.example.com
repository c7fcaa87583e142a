Message-ID: <md-r2@mail.example.com>
Date: Wed, 10 Apr 2019 09:00:00 +0000
From: Judy <judy@example.com>
To: Bob <bob@example.org>
Subject: Report, in new

Report, in new
