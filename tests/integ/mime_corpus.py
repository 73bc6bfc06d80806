"""A MIME corpus for BODYSTRUCTURE/ENVELOPE/BODY[section] comparisons with
Dovecot (test_imap_mime.py): nested multiparts, message/rfc822, digests,
odd encodings, RFC 2231 parameters, groups and broken addresses, malformed
headers and boundaries.  MESSAGES is a list of (name, bytes) with LF line
ends (kotak stores LF); mbox() quotes and joins them as an mboxrd file."""

import re

MSGS = []


def m(name, text, crlf=False):
    b = text.encode("utf-8") if isinstance(text, str) else text
    if crlf:
        b = b.replace(b"\n", b"\r\n")
    MSGS.append((name, b))


m("plain", """From: Alice Example <alice@example.org>
To: bob@example.lan
Subject: hello
Date: Thu, 26 Nov 2026 12:00:00 +0000
Message-ID: <plain@example.org>

Hi Bob,
just text.
""")

m("no_headers_of_note", """X-Nothing: here

body without MIME headers
""")

m("alternative", """From: "Example, Alice" <alice@example.org>
To: bob@example.lan, "Carol C." <carol@example.lan>
Cc: dave@example.lan
Bcc: eve@example.lan
Reply-To: replies@example.org
Sender: list@example.org
Subject: =?UTF-8?Q?caf=C3=A9?= menu
Date: Fri, 27 Nov 2026 08:30:00 +0100
In-Reply-To: <prev@example.org>
Message-ID: <alt@example.org>
MIME-Version: 1.0
Content-Type: multipart/alternative; boundary="b1"

preamble here
--b1
Content-Type: text/plain; charset=utf-8
Content-Transfer-Encoding: quoted-printable

caf=C3=A9 text
--b1
Content-Type: text/html; charset="utf-8"
Content-Transfer-Encoding: 8bit

<p>caf\u00e9</p>
--b1--
epilogue
""")

m("mixed_nested", """From: alice@example.org
To: bob@example.lan
Subject: nested
Message-ID: <nested@example.org>
MIME-Version: 1.0
Content-Type: multipart/mixed;
\tboundary="outer-boundary"

--outer-boundary
Content-Type: multipart/alternative; boundary=inner

--inner
Content-Type: text/plain; charset=us-ascii

plain part
two lines
--inner
Content-Type: text/html

<b>html</b>
--inner--

--outer-boundary
Content-Type: application/pdf; name="report.pdf"
Content-Transfer-Encoding: base64
Content-Disposition: attachment; filename="report.pdf"; size=12
Content-ID: <part3@example.org>
Content-Description: The report
Content-Language: en, de
Content-Location: http://example.org/report.pdf
Content-MD5: Q2hlY2sgSW50ZWdyaXR5IQ==

JVBERi0xLjQKJcfs
j6IKMSAwIG9iago=
--outer-boundary
Content-Type: image/png
Content-Transfer-Encoding: BASE64
Content-Disposition: inline

iVBORw0KGgo=
--outer-boundary--
""")

m("rfc822_attached", """From: alice@example.org
To: bob@example.lan
Subject: forward
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="fw"

--fw
Content-Type: text/plain

see attached
--fw
Content-Type: message/rfc822
Content-Disposition: attachment; filename="orig.eml"

From: Carol <carol@example.lan>
To: alice@example.org
Subject: the original
Date: Mon, 23 Nov 2026 10:00:00 -0500
Message-ID: <orig@example.lan>
MIME-Version: 1.0
Content-Type: multipart/alternative; boundary="inner-alt"

--inner-alt
Content-Type: text/plain

original text
--inner-alt
Content-Type: text/html

<i>original</i>
--inner-alt--
--fw--
""")

m("rfc822_simple_body", """From: a@example.org
Subject: wrapped plain
Content-Type: multipart/mixed; boundary=XX

--XX
Content-Type: message/rfc822

Subject: inner plain
From: b@example.org

inner body line
--XX--
""")

m("top_level_rfc822", """From: a@example.org
Subject: top is a message
Content-Type: message/rfc822

From: inner@example.org
Subject: inside
Content-Type: text/plain; charset=iso-8859-1

inside body
""")

m("digest", """From: digest@example.org
Subject: digest
Content-Type: multipart/digest; boundary="dg"

--dg

From: one@example.org
Subject: first

first body
--dg

From: two@example.org
Subject: second

second body
--dg
Content-Type: text/plain

explicit text in a digest
--dg--
""")

m("odd_encodings", """From: a@example.org
Subject: encodings
Content-Type: multipart/mixed; boundary="enc"

--enc
Content-Type: text/plain
Content-Transfer-Encoding: x-uuencode

begin 644 f
end
--enc
Content-Type: application/octet-stream
Content-Transfer-Encoding: Binary

bin
--enc
Content-Type: text/plain
Content-Transfer-Encoding: 7BIT

seven
--enc
Content-Type: TEXT/PLAIN; CHARSET=ISO-8859-1; Format=Flowed

upper case type
--enc--
""")

m("rfc2231", """From: a@example.org
Subject: rfc2231
Content-Type: multipart/mixed; boundary="r2231"

--r2231
Content-Type: application/octet-stream;
 name*=utf-8''na%C3%AFve.txt
Content-Disposition: attachment;
 filename*0="long";
 filename*1="name.txt"

data
--r2231--
""")

m("params_odd", """From: a@example.org
Subject: params
Content-Type: text/plain (comment) ; charset = "us-ascii" (another) ; x-q="a \\"quoted\\" \\\\ value"; empty=""

body
""")

m("no_boundary", """From: a@example.org
Subject: multipart without boundary
Content-Type: multipart/mixed

--zzz
Content-Type: text/plain

never split
--zzz--
""")

m("unclosed", """From: a@example.org
Subject: boundary never closed
Content-Type: multipart/mixed; boundary="open"

--open
Content-Type: text/plain

first
--open
Content-Type: text/plain

second, then the message ends
""")

m("empty_parts", """From: a@example.org
Subject: empty parts
Content-Type: multipart/mixed; boundary="e"

--e
--e

--e
Content-Type: text/plain

--e--
""")

m("same_boundary_nested", """From: a@example.org
Subject: nested same boundary
Content-Type: multipart/mixed; boundary="same"

--same
Content-Type: multipart/alternative; boundary="same"

--same
Content-Type: text/plain

inner?
--same--
--same--
""")

m("prefix_boundary", """From: a@example.org
Subject: boundary prefixes
Content-Type: multipart/mixed; boundary="ab"

--ab
Content-Type: multipart/alternative; boundary="abc"

--abc
Content-Type: text/plain

x
--abcd trailing text
--abc--
--ab--
""")

m("malformed_headers", """From: a@example.org
Subject: malformed
this line has no colon
X-Long: """ + "y" * 3000 + """
Content-Type: text/plain;
 charset=us-ascii
 ; format=flowed
Content-Type: text/html

body after odd header
""")

m("header_only", """From: a@example.org
Subject: no body at all
""")

m("addresses", """From: "Quoted \\"Name\\"" <q@example.org>, plain@example.org, (comment) Named <named@example.org> (trailing)
To: undisclosed-recipients:;
Cc: group: one@example.org, "Two" <two@example.org>; , after@example.org
Bcc: <@route.example:routed@example.org>, broken@, @nolocal.example, justlocal
Reply-To: =?iso-8859-1?q?J=F6rg?= <joerg@example.org>
Sender:
Subject:   spaces around   
Message-ID:   <id with space@example.org>
In-Reply-To: <a@example.org> <b@example.org>
Date: garbage date

addresses
""")

m("eightbit_headers", """From: J\u00f6rg <joerg@example.org>
To: b\u00fccher@example.lan
Subject: gr\u00fc\u00dfe aus K\u00f6ln
Content-Type: text/plain; charset=utf-8; name="\u00e4.txt"
Content-Disposition: attachment; filename="\u00e4\u00f6.txt"

8bit headers
""")

m("crlf_stored", """From: a@example.org
Subject: stored with CRLF
Content-Type: multipart/mixed; boundary="cr"

--cr
Content-Type: text/plain

crlf line
--cr--
""", crlf=True)

m("from_quoting", """From: a@example.org
Subject: mboxrd
Content-Type: multipart/mixed; boundary="q"

--q
Content-Type: text/plain

From the start
>From quoted
>>From twice
--q--
""")

m("long_subject_folded", """From: a@example.org
Subject: this subject is folded
 over several
\tlines with tabs
To: a@example.org,
  b@example.org

x
""")

m("disposition_lang", """From: a@example.org
Subject: dispositions
Content-Type: multipart/mixed; boundary="d"
Content-Language: fr

--d
Content-Type: text/plain
Content-Disposition: INLINE; filename=plain.txt; creation-date="Wed, 12 Feb 1997 16:29:51 -0500"
Content-Language: en

a
--d
Content-Type: text/plain
Content-Disposition: ; bogus

b
--d
Content-Type: application/x-empty
Content-Disposition: attachment

--d--
""")

m("bad_ctype", """From: a@example.org
Subject: bad content type
Content-Type: text

no subtype
""")

m("bad_ctype2", """From: a@example.org
Subject: bad content type 2
Content-Type: /plain; charset=x

no type
""")

m("no_final_newline", """From: a@example.org
Subject: no final newline

last line without newline""")

m("deep_nesting", "From: a@example.org\nSubject: deep\nContent-Type: multipart/mixed; boundary=\"L0\"\n\n" +
  "".join("--L%d\nContent-Type: multipart/mixed; boundary=\"L%d\"\n\n" % (i, i + 1) for i in range(20)) +
  "--L20\nContent-Type: text/plain\n\ndeep\n" +
  "".join("--L%d--\n" % i for i in range(20, -1, -1)))

m("many_parts", "From: a@example.org\nSubject: many\nContent-Type: multipart/mixed; boundary=\"mp\"\n\n" +
  "".join("--mp\nContent-Type: text/plain\n\np%d\n" % i for i in range(300)) + "--mp--\n")


def mboxrd_quote(b):
    return re.sub(rb"(?m)^(>*From )", rb">\1", b)


def mbox(msgs=None):
    out = b""
    for _, b in (msgs or MSGS):
        if not b.endswith(b"\n"):
            b += b"\n"      # mbox needs a line end before the separator (see no_final_newline)
        out += b"From sender@example.org Thu Nov 26 12:00:00 2026\n" + mboxrd_quote(b) + b"\n"
    return out
