Message-ID: <md-tmp@mail.example.com>
Date: Wed, 10 Apr 2019 09:00:00 +0000
From: Judy <judy@example.com>
To: Bob <bob@example.org>
Subject: In tmp, never listed

In tmp, never listed
