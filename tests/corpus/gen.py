#!/usr/bin/env python3
"""Generate leakwatch's labelled corpus of AI request bodies (python3 stdlib only).

    python3 tests/corpus/gen.py            # rewrite bodies/, labels.json, manifest.json
    python3 tests/corpus/gen.py --check    # regenerate in a temp dir, fail if the committed files differ
    python3 tests/corpus/gen.py --explain bodies/004-text-support_ticket.txt
                                           # the labelled values and hard negatives of one file

Deterministic: every file draws from its own random.Random seeded with SEED and the file number, so
the output is byte-identical on every run, and editing one scenario's code changes only that
scenario's files (changing the counts in SCENARIOS re-plans them all).

Every value is synthetic: card numbers are random Luhn-completed numbers under real issuer prefixes,
IBANs random account numbers with computed mod-97 check digits, keys random bodies in the providers'
published formats. Nothing here is a real credential or a real person's data.

Labels are not typed by hand: each positive value the scenarios emit is registered with its type, then
the body is decoded the way the scanner decodes it (every JSON string value and integer literal) and
each registered value's occurrences are counted there. An audit then runs loose reference patterns for
every type over the same text: a format match that no registered value explains (an accidental card
number in a random order id, a stray key prefix in a base64 blob) stops the generator, so everything
in the corpus that looks like a finding is there on purpose, as a positive or as a hard negative.
"""
import argparse
import base64
import datetime
import filecmp
import hashlib
import hmac
import json
import os
import random
import re
import shutil
import string
import sys
import tempfile
import unicodedata
import zlib

SEED = 20240611
HERE = os.path.dirname(os.path.abspath(__file__))

DIGITS = string.digits
UPPER = string.ascii_uppercase
LOWER = string.ascii_lowercase
ALNUM = string.ascii_letters + string.digits
B62 = string.digits + string.ascii_uppercase + string.ascii_lowercase
B64URL = ALNUM + "-_"
HEX = "0123456789abcdef"
B32 = UPPER + "234567"

# Public documentation / test values: a security team gains nothing from an alert on them (they are
# printed in every provider's docs and cannot be charged or used), and they are common in prompts
# about code. They appear in the corpus as hard negatives; README.md lists them for the allowlists.
TEST_CARDS = [
    "4111111111111111", "4242424242424242", "4012888888881881", "4000056655665556",
    "5555555555554444", "5105105105105100", "2223003122003222", "378282246310005",
    "371449635398431", "6011111111111117", "3566002020360505", "4000000000000002",
]
DOC_IBANS = ["DE89370400440532013000", "GB82WEST12345698765432", "FR1420041010050500013M02606",
             "NL91ABNA0417164300", "CH9300762011623852957"]
DOC_SSNS = ["078-05-1120", "219-09-9999", "123-45-6789"]
DOC_AWS_ID = "AKIAIOSFODNN7EXAMPLE"
DOC_AWS_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
DOC_JWT = ("eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9l"
           "IiwiaWF0IjoxNTE2MjM5MDIyfQ.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c")

# Keys whose values the decoder treats as enums (never user data): positives never go there.
ENUM_KEYS = {"model", "role", "type", "object", "finish_reason", "media_type", "mimeType",
             "mime_type", "category", "threshold"}


def luhn_sum(digits):
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 1:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total


def luhn_ok(digits):
    return luhn_sum(digits) % 10 == 0


def luhn_complete(partial):
    for c in DIGITS:
        if luhn_ok(partial + c):
            return partial + c
    raise AssertionError("unreachable")


def luhn_break(digits):
    """The same number with its last digit changed so that Luhn fails."""
    if not luhn_ok(digits):
        return digits
    last = (int(digits[-1]) + 1 + (int(digits[0]) % 8)) % 10
    return digits[:-1] + str(last)


def iban_mod97(s):
    s = s.replace(" ", "").upper()
    rearranged = s[4:] + s[:4]
    num = "".join(str(int(ch, 36)) for ch in rearranged)
    return int(num) % 97


def iban_check(country, bban):
    return "%02d" % (98 - iban_mod97(country + "00" + bban))


def rstr(rng, alphabet, n):
    return "".join(rng.choice(alphabet) for _ in range(n))


def b62(n, width):
    out = ""
    while n:
        n, r = divmod(n, 62)
        out = B62[r] + out
    return out.rjust(width, "0")


def b64url(raw):
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def ascii_fold(s):
    s = unicodedata.normalize("NFKD", s)
    return "".join(c for c in s if c.isascii() and (c.isalnum() or c in ".-")).lower()


def group(s, sizes, sep):
    out, i = [], 0
    for n in sizes:
        out.append(s[i:i + n])
        i += n
    if i < len(s):
        out.append(s[i:])
    return sep.join(p for p in out if p)


def group4(s, sep=" "):
    return sep.join(s[i:i + 4] for i in range(0, len(s), 4))


# -------------------------------------------------------------------------------------------------
# Synthetic people and companies

FIRST = ["Amelia", "Jonas", "Priya", "Mateo", "Chloé", "Lukas", "Sofia", "Kenji", "Fatima", "Liam",
         "Inès", "Noah", "Hannah", "Diego", "Aiko", "Olivia", "Mehmet", "Elena", "Tomasz", "Grace",
         "Rafael", "Yuki", "Anika", "Samuel", "Léa", "Marco", "Zoe", "Henrik", "Nadia", "Oscar",
         "Beatriz", "Connor", "Ingrid", "Kwame", "Marta", "Ravi", "Saskia", "Thabo", "Ulla", "Wei"]
LAST = ["Whitaker", "Brenner", "Raman", "Alvarez", "Dubois", "Hoffmann", "Rossi", "Tanaka", "Haddad",
        "O'Connell", "Moreau", "Lindqvist", "Kowalski", "Okafor", "van Dijk", "Schulz", "García",
        "Bianchi", "Nakamura", "Petrov", "Fischer", "Costa", "Eriksen", "Murphy", "Novak", "Silva",
        "Yilmaz", "Laurent", "Jansen", "Castillo", "Achterberg", "Mensah", "Ferreira", "Kaur"]
PERSONAL_DOMAINS = ["gmail.com", "outlook.com", "hotmail.co.uk", "yahoo.com", "icloud.com",
                    "proton.me", "gmx.de", "web.de", "orange.fr", "libero.it", "hotmail.es",
                    "ziggo.nl", "bluewin.ch", "yahoo.co.jp", "fastmail.com", "btinternet.com"]
COMPANY_DOMAINS = ["brightwave-analytics.com", "kestrelhealth.org", "lumenfold.io",
                   "harborline.co.uk", "tierraverde.es", "nordlicht-versand.de", "maison-colbert.fr",
                   "vanderberg-bouw.nl", "studiobellini.it", "sakura-trading.co.jp",
                   "alpenblick-treuhand.ch", "quillstone.com", "pinecrest-dental.com",
                   "orbitfreight.net", "mapleleaf-insurance.ca", "ridgeway.law",
                   "copperkettle.coffee", "tallgrass.ag", "fjordline-shipping.no", "helix-bio.eu"]
COMPANIES = ["Brightwave Analytics", "Kestrel Health", "Lumenfold", "Harborline Logistics",
             "Tierra Verde Foods", "Nordlicht Versand GmbH", "Maison Colbert", "Quillstone",
             "Pinecrest Dental", "Orbit Freight", "Copper Kettle Coffee", "Tallgrass Seeds"]
US_AREAS = ["212", "305", "312", "415", "503", "512", "617", "702", "720", "206", "404", "646",
            "773", "818", "919", "480", "615", "971"]
PRODUCTS = ["ergonomic desk chair", "espresso grinder", "noise-cancelling headphones",
            "standing desk frame", "4K monitor", "trail running shoes", "cast iron skillet",
            "smart thermostat", "mechanical keyboard", "carry-on suitcase"]
MODELS_OPENAI = ["gpt-4o", "gpt-4o-mini", "gpt-4.1", "gpt-4.1-mini", "o3-mini", "gpt-4-turbo"]
MODELS_ANTHROPIC = ["claude-3-5-sonnet-20241022", "claude-3-5-haiku-20241022",
                    "claude-3-7-sonnet-20250219", "claude-sonnet-4-20250514",
                    "claude-3-opus-20240229"]
MODELS_GEMINI = ["gemini-1.5-pro", "gemini-1.5-flash", "gemini-2.0-flash", "gemini-2.5-pro"]


class Ctx:
    """One file's random source and the registry of what it emitted."""

    def __init__(self, rng):
        self.rng = rng
        self.pos = {}  # value -> type
        self.neg = {}  # value -> kind of hard negative

    def P(self, typ, value):
        old = self.pos.get(value)
        assert old in (None, typ), (value, old, typ)
        self.pos[value] = typ
        return value

    def N(self, kind, value):
        self.neg.setdefault(value, kind)
        return value

    def pick(self, seq):
        return self.rng.choice(seq)

    def chance(self, p):
        return self.rng.random() < p

    def person(self):
        return "%s %s" % (self.pick(FIRST), self.pick(LAST))

    # ----- personal data (positives) -----------------------------------------------------------

    def email(self, name=None, company=False):
        return self.P("email", self.email_value(name, company))

    def email_value(self, name=None, company=False):
        """An address that is not registered: for places where it is encoded (JWT claims)."""
        name = name or self.person()
        first, last = name.split(" ", 1)
        f, l = ascii_fold(first), ascii_fold(last.replace(" ", ""))
        local = self.pick([f + "." + l, f[0] + l, f + l[0], f + "_" + l, l + "." + f,
                           f + "." + l + str(self.rng.randrange(2, 99))])
        if self.chance(0.08):
            local += "+" + self.pick(["billing", "orders", "news", "work"])
        dom = self.pick(COMPANY_DOMAINS if company else PERSONAL_DOMAINS)
        if self.chance(0.04):
            local = local.capitalize()
        return local + "@" + dom

    def phone(self, country=None, national=False):
        r = self.rng
        country = country or self.pick(["US", "US", "US", "GB", "DE", "FR", "ES", "IT", "NL",
                                         "CH", "JP", "IN", "BR", "PL", "SE", "AU", "IE"])
        d = lambda n: rstr(r, DIGITS, n)  # noqa: E731
        if country == "US":
            area = self.pick(US_AREAS)
            if self.chance(0.5):
                exch, line = "555", "01" + d(2)
            else:
                exch = str(r.randrange(2, 10)) + d(2)
                while exch.endswith("11") or exch == "555":
                    exch = str(r.randrange(2, 10)) + d(2)
                line = d(4)
            style = self.pick(["paren", "dash", "dot", "intl", "intl_dash", "e164", "intl_paren"])
            v = {"paren": "(%s) %s-%s", "dash": "%s-%s-%s", "dot": "%s.%s.%s",
                 "intl": "+1 %s %s %s", "intl_dash": "+1-%s-%s-%s", "e164": "+1%s%s%s",
                 "intl_paren": "+1 (%s) %s-%s"}[style] % (area, exch, line)
        elif country == "GB":
            if self.chance(0.5):
                v = ("07700 900" + d(3)) if national else ("+44 7700 900" + d(3))
            else:
                v = ("020 7946 0" + d(3)) if national else ("+44 20 7946 0" + d(3))
        elif country == "DE":
            if self.chance(0.5):
                mob = self.pick(["151", "160", "170", "176"])
                v = ("0%s %s" % (mob, d(8))) if national else ("+49 %s %s %s" % (mob, d(4), d(4)))
            else:
                v = ("030 %s" % d(8)) if national else ("+49 30 %s" % d(8))
        elif country == "FR":
            p = "%s %s %s %s" % (d(2), d(2), d(2), d(2))
            lead = self.pick(["6", "7", "1"])
            v = ("0%s %s" % (lead, p)) if national else ("+33 %s %s" % (lead, p))
        elif country == "ES":
            v = "+34 6%s %s %s" % (d(2), d(3), d(3))
        elif country == "IT":
            v = "+39 3%s %s %s" % (d(2), d(3), d(4))
        elif country == "NL":
            v = ("06-%s" % d(8)) if national else ("+31 6 %s" % d(8))
        elif country == "CH":
            v = "+41 7%s %s %s %s" % (self.pick("6789"), d(3), d(2), d(2))
        elif country == "JP":
            v = ("090-%s-%s" % (d(4), d(4))) if national else ("+81 90-%s-%s" % (d(4), d(4)))
        elif country == "IN":
            v = "+91 9%s %s" % (d(4), d(5))
        elif country == "BR":
            v = "+55 11 9%s-%s" % (d(4), d(4))
        elif country == "PL":
            v = "+48 5%s %s %s" % (d(2), d(3), d(3))
        elif country == "SE":
            v = "+46 70 %s %s %s" % (d(3), d(2), d(2))
        elif country == "AU":
            v = "+61 4%s %s %s" % (d(2), d(3), d(3))
        elif country == "IE":
            v = "+353 8%s %s %s" % (self.pick("3567"), d(3), d(4))
        else:
            raise ValueError(country)
        return self.P("phone", v)

    def card_number(self, brand=None):
        r = self.rng
        brand = brand or self.pick(["visa", "visa", "visa", "mc", "mc", "mc2", "amex", "discover",
                                    "jcb", "diners", "unionpay"])
        prefix, length = {
            "visa": ("4", 16),
            "mc": (str(r.randrange(51, 56)), 16),
            "mc2": (str(r.randrange(2221, 2721)), 16),
            "amex": (self.pick(["34", "37"]), 15),
            "discover": (self.pick(["6011", "65"]), 16),
            "jcb": (str(r.randrange(3528, 3590)), 16),
            "diners": (self.pick(["36", "300", "305"]), 14),
            "unionpay": ("62" + str(r.randrange(2126, 2926)), 16),
        }[brand]
        while True:
            n = luhn_complete(prefix + rstr(r, DIGITS, length - len(prefix) - 1))
            if n not in TEST_CARDS and len(set(n)) > 3:
                return brand, n

    def card(self, brand=None, sep=None):
        brand, n = self.card_number(brand)
        sep = self.pick([" ", " ", "-", ""]) if sep is None else sep
        if len(n) == 15:
            v = group(n, [4, 6, 5], sep)
        elif len(n) == 14:
            v = group(n, [4, 6, 4], sep)
        else:
            v = group4(n, sep)
        return self.P("credit_card", v)

    def iban_raw(self, country=None):
        r = self.rng
        country = country or self.pick(["DE", "GB", "FR", "NL", "ES", "IT", "CH", "BE", "AT",
                                         "PL", "SE", "IE", "PT", "DK", "FI", "LU", "NO"])
        d = lambda n: rstr(r, DIGITS, n)  # noqa: E731
        if country == "DE":
            bban = d(8) + d(10)
        elif country == "GB":
            bban = self.pick(["BARC", "LOYD", "HBUK", "NWBK", "MIDL"]) + d(6) + d(8)
        elif country == "IE":
            bban = self.pick(["AIBK", "BOFI", "IPBS"]) + d(6) + d(8)
        elif country == "FR":
            bank, branch, acct = d(5), d(5), d(11)
            key = 97 - (89 * int(bank) + 15 * int(branch) + 3 * int(acct)) % 97
            bban = bank + branch + acct + "%02d" % key
        elif country == "NL":
            bban = self.pick(["ABNA", "RABO", "INGB", "TRIO", "SNSB"]) + d(10)
        elif country == "ES":
            bban = d(4) + d(4) + d(2) + d(10)
        elif country == "IT":
            bban = self.pick(UPPER) + d(5) + d(5) + d(12)
        elif country == "CH":
            bban = d(5) + d(12)
        elif country == "BE":
            head = d(10)
            chk = int(head) % 97 or 97
            bban = head + "%02d" % chk
        elif country == "AT":
            bban = d(5) + d(11)
        elif country == "PL":
            bban = d(8) + d(16)
        elif country == "SE":
            bban = d(3) + d(16) + d(1)
        elif country == "PT":
            bban = d(4) + d(4) + d(11) + d(2)
        elif country == "DK":
            bban = d(4) + d(10)
        elif country == "FI":
            bban = d(6) + d(8)
        elif country == "LU":
            bban = d(3) + d(13)
        elif country == "NO":
            bban = d(4) + d(7)
        else:
            raise ValueError(country)
        v = country + iban_check(country, bban) + bban
        assert iban_mod97(v) == 1
        return v

    def iban(self, country=None, printed=None):
        v = self.iban_raw(country)
        while v in DOC_IBANS:
            v = self.iban_raw(country)
        printed = self.chance(0.6) if printed is None else printed
        return self.P("iban", group4(v) if printed else v)

    def ssn(self, style=None):
        r = self.rng
        while True:
            area = r.randrange(1, 900)
            if area == 666:
                continue
            v = "%03d-%02d-%04d" % (area, r.randrange(1, 100), r.randrange(1, 10000))
            if v not in DOC_SSNS:
                break
        style = style or self.pick(["dash", "dash", "dash", "dash", "space"])
        if style == "space":
            v = v.replace("-", " ")
        elif style == "bare":
            v = v.replace("-", "")
        return self.P("us_ssn", v)

    # ----- credentials (positives) -------------------------------------------------------------

    def aws_key(self):
        return self.P("aws_access_key", self.pick(["AKIA", "AKIA", "AKIA", "ASIA"]) +
                      rstr(self.rng, B32, 16))

    def aws_pair(self):
        return "aws_access_key_id=%s aws_secret_access_key=%s" % (self.aws_key(), self.aws_secret())

    def aws_secret(self):
        return self.P("aws_secret_key", rstr(self.rng, ALNUM + "/+", 40))

    def github(self, kind=None):
        kind = kind or self.pick(["ghp", "ghp", "gho", "ghs", "pat"])
        r = self.rng
        if kind == "pat":
            ident, ent = rstr(r, ALNUM, 22), rstr(r, ALNUM, 53)
            payload = ident + "_" + ent
            v = "github_pat_" + payload + b62(zlib.crc32(payload.encode()), 6)
        else:
            ent = rstr(r, ALNUM, 30)
            v = kind + "_" + ent + b62(zlib.crc32(ent.encode()), 6)
        return self.P("github_token", v)

    def openai(self, kind=None):
        r = self.rng
        kind = kind or self.pick(["proj", "proj", "legacy", "svcacct"])
        if kind == "legacy":
            v = "sk-" + rstr(r, ALNUM, 20) + "T3BlbkFJ" + rstr(r, ALNUM, 20)
        elif kind == "proj":
            v = "sk-proj-" + rstr(r, B64URL, 74) + "T3BlbkFJ" + rstr(r, B64URL, 74)
        else:
            v = "sk-svcacct-" + rstr(r, B64URL, 58) + "T3BlbkFJ" + rstr(r, B64URL, 58)
        return self.P("openai_api_key", v)

    def anthropic(self):
        return self.P("anthropic_api_key", "sk-ant-api03-" + rstr(self.rng, B64URL, 93) + "AA")

    def stripe(self, kind=None):
        r = self.rng
        kind = kind or self.pick(["sk_live", "sk_live", "rk_live", "sk_test"])
        body = self.pick([rstr(r, ALNUM, 24), "51" + rstr(r, ALNUM, 97)])
        return self.P("stripe_secret_key", kind + "_" + body)

    def slack(self, kind=None):
        r = self.rng
        kind = kind or self.pick(["xoxb", "xoxb", "xoxp"])
        if kind == "xoxb":
            v = "xoxb-%s-%s-%s" % (rstr(r, DIGITS, 12), rstr(r, DIGITS, 13), rstr(r, ALNUM, 24))
        else:
            v = "xoxp-%s-%s-%s-%s" % (rstr(r, DIGITS, 12), rstr(r, DIGITS, 12),
                                      rstr(r, DIGITS, 13), rstr(r, HEX, 32))
        return self.P("slack_token", v)

    def google(self):
        return self.P("google_api_key", "AIzaSy" + rstr(self.rng, B64URL, 33))

    def private_key(self, kind=None, escaped=False, indent=""):
        r = self.rng
        kind = kind or self.pick(["RSA", "PKCS8", "EC", "OPENSSH"])
        head, lead, nbytes = {
            "RSA": ("RSA PRIVATE KEY", b"\x30\x82\x04\xa4\x02\x01\x00\x02\x82\x01\x01\x00", 1190),
            "PKCS8": ("PRIVATE KEY", b"\x30\x82\x04\xbd\x02\x01\x00\x30\x0d\x06\x09\x2a\x86\x48"
                      b"\x86\xf7\x0d\x01\x01\x01\x05\x00\x04\x82\x04\xa7", 1215),
            "EC": ("EC PRIVATE KEY", b"\x30\x77\x02\x01\x01\x04\x20", 114),
            "OPENSSH": ("OPENSSH PRIVATE KEY", b"openssh-key-v1\x00\x00\x00\x00\x04none\x00\x00"
                        b"\x00\x04none\x00\x00\x00\x00\x00\x00\x00\x01\x00\x00\x00\x33\x00\x00"
                        b"\x00\x0bssh-ed25519", 370),
        }[kind]
        raw = lead + bytes(r.randrange(256) for _ in range(nbytes - len(lead)))
        b = base64.b64encode(raw).decode()
        width = 70 if kind == "OPENSSH" else 64
        lines = [b[i:i + width] for i in range(0, len(b), width)]
        nl = "\\n" if escaped else "\n" + indent
        v = nl.join(["-----BEGIN %s-----" % head] + lines + ["-----END %s-----" % head])
        return self.P("private_key", v)

    def jwt(self, email=None):
        r = self.rng
        alg = self.pick(["HS256", "RS256", "ES256"])
        header = {"alg": alg, "typ": "JWT"}
        if alg != "HS256":
            header["kid"] = rstr(r, HEX, 16)
        iat = 1717000000 + r.randrange(3000000)
        payload = {"sub": self.pick(["usr_", "acct_", "", "auth0|"]) + rstr(r, ALNUM, 18),
                   "iat": iat, "exp": iat + self.pick([900, 3600, 86400])}
        if self.chance(0.5):
            payload["iss"] = self.pick(["https://auth.lumenfold.io/", "https://login.quillstone.com",
                                        "https://sso.kestrelhealth.org/realms/main"])
        if self.chance(0.5):
            payload["scope"] = self.pick(["read:orders write:orders", "openid profile email",
                                          "admin", "billing:read"])
        if email:
            payload["email"] = email
        h = b64url(json.dumps(header, separators=(",", ":")).encode())
        p = b64url(json.dumps(payload, separators=(",", ":")).encode())
        if alg == "HS256":
            key = bytes(r.randrange(256) for _ in range(32))
            sig = hmac.new(key, (h + "." + p).encode(), hashlib.sha256).digest()
        elif alg == "RS256":
            sig = bytes(r.randrange(256) for _ in range(256))
        else:
            sig = bytes(r.randrange(256) for _ in range(64))
        return self.P("jwt", h + "." + p + "." + b64url(sig))

    def gitlab(self):
        return self.P("gitlab_token", "glpat-" + rstr(self.rng, B64URL, 20))

    def sendgrid(self):
        return self.P("sendgrid_api_key", "SG." + rstr(self.rng, B64URL, 22) + "." +
                      rstr(self.rng, B64URL, 43))

    def twilio(self):
        return self.P("twilio_api_key", "SK" + rstr(self.rng, HEX, 32))

    def npm(self):
        ent = rstr(self.rng, ALNUM, 30)
        return self.P("npm_token", "npm_" + ent + b62(zlib.crc32(ent.encode()), 6))

    def slack_webhook(self):
        r = self.rng
        return self.P("slack_webhook", "https://hooks.slack.com/services/T%s/B%s/%s" % (
            rstr(r, UPPER + DIGITS, 8), rstr(r, UPPER + DIGITS, 10), rstr(r, ALNUM, 24)))

    def any_key(self):
        f = self.pick([self.aws_key, self.github, self.github, self.openai, self.anthropic,
                       self.anthropic, self.stripe, self.slack, self.slack, self.slack, self.google,
                       self.gitlab, self.sendgrid, self.twilio, self.twilio, self.npm, self.npm,
                       self.slack_webhook, self.aws_pair, self.aws_pair])
        return f()

    # ----- hard negatives ----------------------------------------------------------------------

    def order16(self):
        """A 16-digit order number that fails Luhn (some start with 4 or 5, like cards)."""
        n = self.pick(["4", "5", "1", "3", "6", "9"]) + rstr(self.rng, DIGITS, 15)
        return self.N("order number (Luhn fails)", luhn_break(n))

    def order_grouped(self):
        n = luhn_break(self.pick(["4", "5", "2"]) + rstr(self.rng, DIGITS, 15))
        return self.N("order number (Luhn fails)", group4(n, self.pick(["-", " "])))

    def tracking(self):
        r = self.rng
        kind = self.pick(["ups", "fedex", "usps", "dhl"])
        if kind == "ups":
            v = "1Z" + rstr(r, UPPER + DIGITS, 6) + rstr(r, DIGITS, 10)
        elif kind == "fedex":
            v = luhn_break(rstr(r, DIGITS, 15))
        elif kind == "usps":
            v = "9400" + rstr(r, DIGITS, 18)
        else:
            v = "JD" + rstr(r, DIGITS, 18)
        return self.N("tracking number", v)

    def imei(self):
        return self.N("IMEI (15 digits, Luhn-valid, not a card length for its prefix)",
                      luhn_complete("35" + rstr(self.rng, DIGITS, 12)))

    def test_card(self):
        n = self.pick(TEST_CARDS)
        if len(n) == 16 and self.chance(0.6):
            n = group4(n, self.pick([" ", "-"]))
        return self.N("documentation test card", n)

    def masked_card(self):
        d = rstr(self.rng, DIGITS, 4)
        return self.N("masked card", self.pick(["**** **** **** " + d, "XXXX-XXXX-XXXX-" + d,
                                                "ending in " + d, "•••• " + d]))

    def uuid(self):
        h = rstr(self.rng, HEX, 32)
        h = h[:12] + "4" + h[13:16] + self.pick("89ab") + h[17:]
        return self.N("uuid", "%s-%s-%s-%s-%s" % (h[:8], h[8:12], h[12:16], h[16:20], h[20:]))

    def sha1(self):
        return self.N("git sha", rstr(self.rng, HEX, 40))

    def sha256(self):
        return self.N("sha256", rstr(self.rng, HEX, 64))

    def blob(self, nbytes=48):
        while True:
            v = base64.b64encode(bytes(self.rng.randrange(256) for _ in range(nbytes))).decode()
            if not re.search(r"AKIA|ASIA|AIza|gh[pousr]_|xox|eyJ|sk[-_]|SG\.|npm_|glpat", v):
                return self.N("base64 blob", v)

    def epoch_ms(self):
        return self.N("epoch millis", str(1717000000000 + self.rng.randrange(40000000000)))

    def epoch_s(self):
        return self.N("epoch seconds", str(1717000000 + self.rng.randrange(40000000)))

    def ts(self):
        r = self.rng
        return "2024-%02d-%02dT%02d:%02d:%02d.%03dZ" % (r.randrange(1, 13), r.randrange(1, 29),
                                                        r.randrange(24), r.randrange(60),
                                                        r.randrange(60), r.randrange(1000))

    def date(self, fmt="iso"):
        r = self.rng
        y, m, d = r.choice([2023, 2024, 2025]), r.randrange(1, 13), r.randrange(1, 29)
        return {"iso": "%d-%02d-%02d" % (y, m, d), "eu": "%02d.%02d.%d" % (d, m, y),
                "us": "%02d/%02d/%d" % (m, d, y), "fr": "%02d/%02d/%d" % (d, m, y)}[fmt]

    def dob(self, fmt):
        r = self.rng
        y, m, d = r.randrange(1958, 2003), r.randrange(1, 13), r.randrange(1, 29)
        return "%02d/%02d/%d" % (m, d, y) if fmt == "us" else "%02d.%02d.%d" % (d, m, y)

    def salary(self, cur):
        n = self.rng.randrange(42, 190) * 1000
        return "$%s" % "{:,}".format(n) if cur == "$" else "%s €" % "{:,}".format(n).replace(",", ".")

    def ip(self, private=True):
        r = self.rng
        if private:
            return self.pick(["10.%d.%d.%d" % (r.randrange(256), r.randrange(256), r.randrange(1, 255)),
                              "192.168.%d.%d" % (r.randrange(256), r.randrange(1, 255)),
                              "172.%d.%d.%d" % (r.randrange(16, 32), r.randrange(256),
                                                r.randrange(1, 255))])
        return "%d.%d.%d.%d" % (r.choice([34, 52, 81, 141, 185, 203]), r.randrange(256),
                                r.randrange(256), r.randrange(1, 255))

    def version(self):
        r = self.rng
        return self.pick(["%d.%d.%d" % (r.randrange(1, 20), r.randrange(30), r.randrange(50)),
                          "v%d.%d.%d" % (r.randrange(1, 5), r.randrange(30), r.randrange(50)),
                          "10.0.%d.%d" % (r.randrange(17000, 26000), r.randrange(5000))])

    def price(self, cur="$"):
        r = self.rng
        a = r.randrange(5, 5000) + r.randrange(100) / 100.0
        if cur == "€":
            return ("%.2f" % a).replace(".", ",") + " €"
        return "%s%s" % (cur, "{:,.2f}".format(a))

    def bad_iban(self):
        v = self.iban_raw()
        kind = self.pick(["checksum", "checksum", "checksum", "length"])
        if kind == "checksum":
            cd = int(v[2:4])
            v = v[:2] + "%02d" % ((cd + self.rng.randrange(1, 90)) % 97 + 2) + v[4:]
            if iban_mod97(v) == 1:
                v = v[:2] + "%02d" % ((int(v[2:4]) + 1) % 97 + 2) + v[4:]
            assert iban_mod97(v) != 1
            reason = "IBAN with a broken checksum"
        else:
            bban = v[4:-1]
            v = v[:2] + iban_check(v[:2], bban) + bban
            reason = "IBAN with the wrong length for its country (mod-97 holds)"
        return self.N(reason, group4(v) if self.chance(0.5) else v)

    def doc_iban(self):
        v = self.pick(DOC_IBANS)
        return self.N("documentation IBAN", group4(v) if self.chance(0.5) else v)

    def bad_ssn(self):
        r = self.rng
        kind = self.pick(["000", "666", "9xx", "group00", "serial0000", "doc", "doc"])
        if kind == "000":
            v = "000-%02d-%04d" % (r.randrange(1, 100), r.randrange(1, 10000))
        elif kind == "666":
            v = "666-%02d-%04d" % (r.randrange(1, 100), r.randrange(1, 10000))
        elif kind == "9xx":
            # groups outside the ITIN ranges (50-65, 70-88, 90-92, 94-99): not an ITIN either
            v = "9%02d-%02d-%04d" % (r.randrange(100), r.randrange(10, 50), r.randrange(1, 10000))
        elif kind == "group00":
            v = "%03d-00-%04d" % (r.randrange(1, 600), r.randrange(1, 10000))
        elif kind == "serial0000":
            v = "%03d-%02d-0000" % (r.randrange(1, 600), r.randrange(1, 100))
        else:
            v = self.pick(DOC_SSNS)
        return self.N("invalid or documentation SSN (%s)" % kind, v)

    def masked_ssn(self):
        return self.N("masked SSN", self.pick(["XXX-XX-", "***-**-"]) + rstr(self.rng, DIGITS, 4))

    def doc_email(self):
        return self.N("reserved-domain email", self.pick(
            ["jane.doe@example.com", "john.smith@example.org", "support@example.net",
             "alice@mail.example.com", "test.user@example.com", "dev@acme.test",
             "noreply@service.invalid", "user@example.com", "bob@shop.example"]))

    def non_email(self):
        return self.N("not an email", self.pick(
            ["git@github.com:lumenfold/checkout-api.git", "git@gitlab.com:platform/infra.git",
             "icon@2x.png", "logo@3x.webp", "hero-banner@2x.jpg", "deploy@10.0.4.17",
             "ubuntu@ip-10-0-1-23", "lodash@4.17.21", "@types/node@20.11.5"]))

    def product_code(self):
        r = self.rng
        return self.N("phone-like product code", self.pick([
            "PN %03d-%03d-%04d-%02d" % (r.randrange(200, 999), r.randrange(200, 999),
                                        r.randrange(10000), r.randrange(100)),
            "SKU-%03d.%03d.%04d.%d" % (r.randrange(200, 999), r.randrange(200, 999),
                                       r.randrange(10000), r.randrange(10)),
            "ISBN 978-%d-%04d-%04d-%d" % (r.randrange(10), r.randrange(10000), r.randrange(10000),
                                          r.randrange(10)),
            "REF %03d %04d %04d %04d" % (r.randrange(100, 999), r.randrange(10000),
                                         r.randrange(10000), r.randrange(10000))]))

    def placeholder_key(self, kind=None):
        kind = kind or self.pick(["openai", "anthropic", "aws", "stripe", "github", "slack",
                                  "google", "generic"])
        v = self.pick({
            "openai": ["sk-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx", "sk-...",
                       "sk-proj-XXXXXXXXXXXXXXXXXXXXXXXX", "<OPENAI_API_KEY>", "sk-your-key-here"],
            "anthropic": ["sk-ant-...redacted", "sk-ant-api03-xxxxxxxxxxxxxxxxxxxx",
                          "sk-ant-api03-REDACTED", "$ANTHROPIC_API_KEY"],
            "aws": [DOC_AWS_ID, "AKIAXXXXXXXXXXXXXXXX", "AKIA****************"],
            "stripe": ["sk_live_xxxxxxxxxxxxxxxxxxxxxxxx", "sk_test_...", "sk_live_REDACTED",
                       "pk_live_" + rstr(self.rng, ALNUM, 24)],
            "github": ["ghp_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx", "ghp_****",
                       "ghp_ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"],
            "slack": ["xoxb-your-bot-token", "xoxb-***", "xoxp-REDACTED"],
            "google": ["AIzaSy...", "YOUR_GOOGLE_API_KEY", "AIzaSyXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX"],
            "generic": ["YOUR_API_KEY", "<your-api-key>", "${API_KEY}", "changeme",
                        "os.environ[\"OPENAI_API_KEY\"]"],
        }[kind])
        return self.N("placeholder key", v)


# -------------------------------------------------------------------------------------------------
# Scenarios: each returns a Conv, the API-neutral content of one request.

class Conv:
    def __init__(self, system=None, turns=None, tool=None, image=False, chunks=None):
        self.system = system
        self.turns = turns or []  # [(role "user"|"assistant", text)]
        self.tool = tool  # {"name", "description", "args": dict, "result": dict}
        self.image = image
        self.chunks = chunks  # embeddings input


def sc_support_ticket(c):
    name = c.person()
    email = c.email(name)
    company = c.pick(COMPANIES)
    product = c.pick(PRODUCTS)
    order = c.order_grouped() if c.chance(0.5) else "#" + c.order16()
    ticket = "T-%d" % c.rng.randrange(10000, 99999)
    complaints = [
        ("Where is my order?",
         "Hi, I ordered the %s on %s and the tracking (%s) has said 'label created' for 9 days. "
         "Can you check what is going on?" % (product, c.date("us"), c.tracking())),
        ("Double charge",
         "Hello, I was charged twice for order %s (card %s). Please refund the duplicate charge "
         "of %s." % (order, c.masked_card(), c.price())),
        ("Damaged item",
         "The %s arrived with a cracked housing. I'd like a replacement, not a refund. "
         "Photos attached." % product),
        ("Repair status",
         "My phone (IMEI %s) has been at your repair centre since %s. Order %s. When do I get it "
         "back?" % (c.imei(), c.date("us"), order)),
        ("Address change",
         "I need to change the delivery address for %s, I'm moving next week. New address: "
         "%d Alder Lane, Apt %d, Portland OR 97205." % (order, c.rng.randrange(10, 9999),
                                                        c.rng.randrange(1, 40))),
    ]
    subject, body = c.pick(complaints)
    lines = ["Ticket %s from %s <%s>" % (ticket, name, email), "Subject: %s" % subject,
             "", body, ""]
    if c.chance(0.7):
        lines.append("Phone on file: %s" % c.phone())
    if c.chance(0.45):
        lines.append("Customer wrote: \"you can charge the difference to my other card, %s, "
                     "exp %02d/%d\"" % (c.card(), c.rng.randrange(1, 13), c.rng.randrange(26, 31)))
    if c.chance(0.25):
        lines.append("Alt contact: %s" % c.email(company=True))
    lines.append("Order %s placed %s, total %s" % (order, c.date("iso"), c.price()))
    lines.append("Internal ref %s, trace %s" % (c.uuid(), c.blob(18)))
    turns = [("user", "\n".join(lines) + "\n\nDraft a reply for the agent. Keep it under 120 words.")]
    if c.chance(0.4):
        turns.append(("assistant", "Hi %s,\n\nThanks for reaching out about %s. I've looked into it "
                      "and escalated to our fulfilment team; you'll hear back within 24 hours at %s."
                      "\n\nBest,\n%s Support" % (name.split()[0], order, email, company)))
        turns.append(("user", "Good, but make it warmer and mention the 10%% voucher code "
                      "SORRY10-%s." % rstr(c.rng, UPPER + DIGITS, 6)))
    system = ("You are a support assistant for %s. Draft concise, friendly replies. Never promise "
              "refunds above $200 without approval." % company)
    tool = None
    if c.chance(0.4):
        result = {"customer_id": "cus_" + rstr(c.rng, ALNUM, 14), "email": email,
                  "orders": [int(c.order16()) for _ in range(c.rng.randrange(1, 4))],
                  "lifetime_value": c.price(), "created_at": c.ts()}
        if c.chance(0.6):
            result["phone"] = c.phone()
        if c.chance(0.3):
            result["default_card"] = c.masked_card()
        tool = {"name": "lookup_customer", "description": "Find a customer by email",
                "args": {"email": email}, "result": result}
    return Conv(system, turns, tool=tool)


def sc_crm_note(c):
    acct = c.pick(COMPANIES)
    contacts = []
    for _ in range(c.rng.randrange(1, 4)):
        n = c.person()
        title = c.pick(["VP Finance", "Head of IT", "Procurement Lead", "CTO", "Office Manager",
                        "Controller"])
        bits = ["- %s (%s)" % (n, title), "email %s" % c.email(n, company=True)]
        if c.chance(0.8):
            bits.append("mobile %s" % c.phone())
        contacts.append(", ".join(bits))
    notes = [
        "Account: %s (SF id 0015g%s)" % (acct, rstr(c.rng, ALNUM, 13)),
        "Renewal %s, ARR %s, seats %d" % (c.date("iso"), c.price(), c.rng.randrange(20, 900)),
        "Contacts:", *contacts,
    ]
    if c.chance(0.5):
        notes.append("They switched invoicing to SEPA direct debit: IBAN %s, mandate ref MNDT-%s"
                     % (c.iban(), rstr(c.rng, DIGITS, 8)))
    if c.chance(0.3):
        notes.append("Old IBAN on file %s bounced (typo?), do not use." % c.bad_iban())
    notes.append("Call notes %s: unhappy with onboarding speed; wants SSO by Q3. Next step: demo "
                 "of v%d.%d admin console." % (c.date("iso"), c.rng.randrange(2, 6),
                                              c.rng.randrange(10)))
    if c.chance(0.3):
        assistant = c.person()
        notes.append("Personal note: prefers calls after 4pm, assistant is %s (%s)."
                     % (assistant, c.email(assistant, company=True)))
    ask = c.pick(["Summarize these account notes for the QBR deck in 5 bullets.",
                  "Write a follow-up email to the main contact based on these notes.",
                  "Extract every contact as JSON with name, role, email, phone."])
    tool = None
    if c.chance(0.35):
        n = c.person()
        tool = {"name": "crm_search", "description": "Search CRM contacts",
                "args": {"account": acct, "query": "billing contact"},
                "result": {"matches": [{"contact": n, "title": "Accounts Payable",
                                        "email": c.email(n, company=True),
                                        "direct": c.phone(), "updated": c.epoch_ms()}],
                           "took_ms": c.rng.randrange(3, 90)}}
    return Conv("You are a sales operations assistant.",
                [("user", ask + "\n\n" + "\n".join(notes))], tool=tool)


def sc_checkout_log(c):
    svc = c.pick(["checkout-api", "payments-gw", "order-svc"])
    lines = []
    staging = c.chance(0.2)
    for _ in range(c.rng.randrange(6, 14)):
        t = c.ts()
        k = c.rng.random()
        rid = c.uuid()
        if k < 0.25:
            lines.append("%s INFO  %s req=%s order=%s amount=%s currency=%s" % (
                t, svc, rid, c.order16(), c.price(""), c.pick(["USD", "EUR", "GBP"])))
        elif k < 0.5:
            pan = c.test_card() if staging else c.card(sep=c.pick(["", " "]))
            lines.append("%s WARN  %s req=%s declined pan=%s exp=%02d/%d reason=%s" % (
                t, svc, rid, pan, c.rng.randrange(1, 13), c.rng.randrange(25, 31),
                c.pick(["insufficient_funds", "do_not_honor", "expired_card", "cvc_check_failed"])))
        elif k < 0.6:
            lines.append("%s DEBUG %s req=%s client_ip=%s ua=\"Mozilla/5.0\" latency_ms=%d" % (
                t, svc, rid, c.ip(False), c.rng.randrange(20, 900)))
        elif k < 0.7:
            lines.append("%s INFO  %s req=%s customer=%s billing_phone=%s" % (
                t, svc, rid, c.email(), c.phone("US")))
        elif k < 0.8:
            lines.append("%s INFO  %s req=%s bin=%s last4=%s fingerprint=%s" % (
                t, svc, rid, rstr(c.rng, DIGITS, 6), rstr(c.rng, DIGITS, 4), c.blob(12)))
        elif k < 0.9:
            lines.append("%s INFO  %s req=%s created_ms=%s idempotency_key=%s" % (
                t, svc, rid, c.epoch_ms(), c.uuid()))
        else:
            lines.append("%s ERROR %s req=%s upstream=%s:%d timeout after %dms" % (
                t, svc, rid, c.ip(), c.pick([443, 8443, 9000]), c.rng.randrange(1000, 30000)))
    env = "staging" if staging else "production"
    ask = c.pick(["Why are so many payments declined in these %s logs? Group by reason." % env,
                  "Summarize the errors in this %s log excerpt and suggest fixes." % env,
                  "Turn these %s log lines into a markdown table." % env])
    tool = None
    if c.chance(0.5):
        result = {"order_id": int(c.order16()), "status": "declined", "created": int(c.epoch_ms())}
        if not staging and c.chance(0.6):
            # a legacy service returning the PAN as a JSON number
            _, n = c.card_number(c.pick(["visa", "mc"]))
            result["card_number"] = int(c.P("credit_card", n))
        tool = {"name": "get_order", "description": "Fetch an order by id",
                "args": {"order_id": str(result["order_id"])}, "result": result}
    return Conv("You are an SRE assistant for an e-commerce platform.",
                [("user", ask + "\n\n```\n" + "\n".join(lines) + "\n```")], tool=tool)


def env_block(c, n):
    """A .env file with n real-format secrets among placeholders and harmless settings."""
    makers = [
        ("OPENAI_API_KEY", c.openai), ("ANTHROPIC_API_KEY", c.anthropic),
        ("STRIPE_SECRET_KEY", c.stripe), ("GITHUB_TOKEN", c.github),
        ("SLACK_BOT_TOKEN", c.slack), ("GOOGLE_MAPS_API_KEY", c.google),
        ("GEMINI_API_KEY", c.google), ("SENDGRID_API_KEY", c.sendgrid),
        ("TWILIO_API_KEY", c.twilio), ("GITLAB_TOKEN", c.gitlab), ("NPM_TOKEN", c.npm),
        ("SLACK_WEBHOOK_URL", c.slack_webhook), ("OPENAI_ADMIN_KEY", c.openai),
        ("CLAUDE_KEY", c.anthropic), ("STRIPE_RESTRICTED_KEY", lambda: c.stripe("rk_live")),
        ("JWT_PRIVATE_KEY", lambda: '"%s"' % c.private_key("PKCS8", escaped=True)),
    ]
    c.rng.shuffle(makers)
    lines = ["# generated by setup.sh on %s" % c.date("iso"), "NODE_ENV=production",
             "PORT=%d" % c.pick([3000, 8080, 8000]),
             "DATABASE_URL=postgres://app:${DB_PASSWORD}@db.internal:5432/orders",
             "REDIS_URL=redis://cache.internal:6379/0"]
    if c.chance(0.7):
        lines += ["AWS_REGION=%s" % c.pick(["us-east-1", "eu-west-1", "eu-central-1"]),
                  "AWS_ACCESS_KEY_ID=%s" % c.aws_key(), "AWS_SECRET_ACCESS_KEY=%s" % c.aws_secret()]
    for name, f in makers[:n]:
        lines.append("%s=%s" % (name, f()))
    for name, _ in makers[n:n + 2]:
        lines.append("%s=%s" % (name, c.placeholder_key("generic")))
    if c.chance(0.4):
        lines.append("TWILIO_ACCOUNT_SID=%s" % c.N("twilio account sid", "AC" + rstr(c.rng, HEX, 32)))
    lines.append("SENTRY_RELEASE=%s" % c.sha1())
    return "\n".join(lines)


def sc_code_review(c):
    kind = c.pick(["diff", "env", "env", "env", "k8s", "yaml", "python", "node", "terraform"])
    if kind == "diff":
        key_line = c.pick([
            lambda: 'OPENAI_API_KEY = os.environ.get("OPENAI_API_KEY", "%s")  # TODO remove' % c.openai(),
            lambda: 'stripe.api_key = "%s"' % c.stripe(),
            lambda: 'client = anthropic.Anthropic(api_key="%s")' % c.anthropic(),
            lambda: 'SLACK_TOKEN = "%s"' % c.slack(),
            lambda: 'genai.configure(api_key="%s")' % c.google(),
        ])()
        code = ("diff --git a/config/settings.py b/config/settings.py\nindex %s..%s 100644\n"
                "--- a/config/settings.py\n+++ b/config/settings.py\n@@ -12,7 +12,9 @@ import os\n"
                " DEBUG = False\n-API_TIMEOUT = 30\n+API_TIMEOUT = 60\n+%s\n"
                " ALLOWED_HOSTS = [\"api.lumenfold.io\"]\n+# commit %s\n") % (
            c.sha1()[:7], c.sha1()[:7], key_line, c.sha1())
        ask = "Review this diff. Anything risky before I merge?"
    elif kind == "env":
        code = env_block(c, c.rng.randrange(4, 9))
        ask = "My app can't connect to the database in prod. Here's the .env, what's wrong?"
    elif kind == "k8s":
        code = ("apiVersion: v1\nkind: Secret\nmetadata:\n  name: payments-api\n  namespace: prod\n"
                "type: Opaque\nstringData:\n  STRIPE_SECRET_KEY: \"%s\"\n  GITHUB_TOKEN: %s\n"
                "  SENDGRID_API_KEY: %s\n  tls.key: |\n    %s\ndata:\n  ca.crt: %s\n"
                "  tls.crt: %s\n---\n"
                "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: payments-api\nspec:\n"
                "  template:\n    spec:\n      containers:\n      - name: api\n"
                "        image: registry.lumenfold.io/payments-api@sha256:%s\n") % (
            c.stripe(), c.github(), c.sendgrid(),
            c.private_key(c.pick(["RSA", "EC"]), indent="    "), c.blob(60), c.blob(24),
            c.sha256())
        ask = "Why does kubectl apply reject this manifest?"
    elif kind == "yaml":
        code = ("app:\n  name: notifier\n  version: %s\nslack:\n  token: %s\n  webhook: %s\n"
                "twilio:\n  api_key: %s\n  api_secret: ${TWILIO_API_SECRET}\nopenai:\n"
                "  api_key: %s\n  model: gpt-4o-mini\nadmin_email: %s\n") % (
            c.version(), c.slack(), c.slack_webhook(), c.twilio(),
            c.openai() if c.chance(0.6) else c.placeholder_key("openai"), c.doc_email())
        ask = "Convert this config to TOML and keep the comments."
    elif kind == "python":
        code = ("import boto3\n\nsession = boto3.Session(\n    aws_access_key_id=\"%s\",\n"
                "    aws_secret_access_key=\"%s\",\n    region_name=\"eu-west-1\",\n)\n"
                "s3 = session.client(\"s3\")\n# bucket etag %s\n"
                "for obj in s3.list_objects_v2(Bucket=\"exports-%s\")[\"Contents\"]:\n"
                "    print(obj[\"Key\"])\n") % (c.aws_key(), c.aws_secret(), c.sha1()[:32],
                                               rstr(c.rng, LOWER + DIGITS, 6))
        ask = "This script returns AccessDenied on list_objects_v2. Why?"
    elif kind == "node":
        code = ("const { Octokit } = require('@octokit/rest');\nconst octokit = new Octokit({ auth: "
                "'%s' });\n// npm publish uses //registry.npmjs.org/:_authToken=%s\n"
                "const OpenAI = require('openai');\nconst openai = new OpenAI({ apiKey: '%s' });\n"
                "module.exports = { octokit, openai };\n") % (
            c.github(), c.npm(), c.openai() if c.chance(0.7) else c.placeholder_key("openai"))
        ask = "Refactor this into ES modules with top-level await."
    else:
        code = ("provider \"aws\" {\n  region     = \"us-east-1\"\n  access_key = \"%s\"\n"
                "  secret_key = \"%s\"\n}\n\nresource \"aws_s3_bucket\" \"logs\" {\n"
                "  bucket = \"lumenfold-logs-%s\"\n}\n") % (
            c.aws_key(), c.N("placeholder key", "${var.aws_secret_key}"), c.uuid()[:8])
        ask = "Is this Terraform OK for production?"
    if c.chance(0.3):
        code += "\n# owner: %s" % c.email(company=True)
    return Conv("You are a senior engineer doing code review. Be specific.",
                [("user", "%s\n\n```\n%s\n```" % (ask, code))])


def sc_code_clean(c):
    """Code with placeholders and documentation values only."""
    snippets = [
        "from openai import OpenAI\nclient = OpenAI(api_key=%s)\n# or export OPENAI_API_KEY=%s" % (
            c.placeholder_key("generic"), c.placeholder_key("openai")),
        "aws configure set aws_access_key_id %s\naws configure set aws_secret_access_key %s" % (
            c.N("documentation AWS key", DOC_AWS_ID), c.N("documentation AWS key", DOC_AWS_SECRET)),
        "curl https://api.anthropic.com/v1/messages -H \"x-api-key: %s\" -H \"anthropic-version: "
        "2023-06-01\"" % c.placeholder_key("anthropic"),
        "const stripe = require('stripe')('%s');\n// test with %s, exp 12/34, any CVC" % (
            c.placeholder_key("stripe"), c.test_card()),
        "git clone %s\ncd checkout-api && git checkout %s" % (c.non_email(), c.sha1()),
        "<img src=\"/static/%s\" srcset=\"/static/%s 2x\">" % (c.non_email(), c.non_email()),
        "SLACK_BOT_TOKEN=%s\nGITHUB_TOKEN=%s" % (c.placeholder_key("slack"),
                                                 c.placeholder_key("github")),
        "# docker pull ghcr.io/lumenfold/api@sha256:%s\n# image built at %s" % (c.sha256(), c.ts()),
        "assert validate_iban(\"%s\")  # from the ISO 13616 examples" % c.doc_iban(),
        "EXAMPLE_JWT = \"%s\"  # from jwt.io" % c.N("documentation JWT", DOC_JWT),
        "DEFAULT_CONTACT = \"%s\"\nFALLBACK = \"%s\"" % (c.doc_email(), c.doc_email()),
        "-----BEGIN PRIVATE KEY-----\n<paste your key here>\n-----END PRIVATE KEY-----",
        "INVALID_SSNS = [\"%s\", \"%s\", \"%s\"]\nINVALID_IBANS = [\"%s\", \"%s\"]\n"
        "STRIPE_TEST_CARDS = [\"%s\", \"%s\"]\nIMEI_SAMPLE = \"%s\"" % (
            c.bad_ssn(), c.bad_ssn(), c.bad_ssn(), c.bad_iban(), c.bad_iban(), c.test_card(),
            c.test_card(), c.imei()),
    ]
    picks = c.rng.sample(snippets, c.rng.randrange(2, 5))
    for p in picks:
        if "BEGIN PRIVATE KEY" in p:
            c.N("PEM armour without key material", p)
    ask = c.pick(["Explain what each of these snippets does.",
                  "Which of these would fail on Windows?",
                  "Write unit tests for the code below.",
                  "Add type hints and docstrings."])
    return Conv(None, [("user", ask + "\n\n" + "\n\n".join("```\n%s\n```" % p for p in picks))])


def sc_hr_note(c):
    name = c.person()
    start = c.date("iso")
    us = c.chance(0.7)
    lines = ["New hire: %s" % name, "Role: %s" % c.pick(["Backend Engineer", "Account Executive",
                                                         "Data Analyst", "Product Designer"]),
             "Start date: %s" % start,
             "Personal email: %s" % c.email(name),
             "Mobile: %s" % (c.phone("US") if us else c.phone(c.pick(["GB", "DE", "NL", "FR"]),
                                                               national=c.chance(0.5)))]
    if us:
        lines.append("SSN: %s" % c.ssn())
        lines.append("Date of birth: %s" % c.dob("us"))
        lines.append("Salary: %s/yr, bonus target 10%%" % c.salary("$"))
        lines.append("")
        lines.append("Direct deposit: routing %s, account %s" % (
            c.N("routing number", "0%s" % rstr(c.rng, DIGITS, 8)),
            c.N("bank account number", rstr(c.rng, DIGITS, 12))))
        if c.chance(0.3):
            lines.append("Spouse (benefits): %s, SSN %s" % (c.person(), c.ssn(c.pick(["dash", "bare"]))))
        if c.chance(0.3):
            lines.append("Previous employer's letter listed SSN %s, which is a typo (invalid "
                         "area)." % c.bad_ssn())
    else:
        lines.append("Payroll IBAN: %s" % c.iban(c.pick(["GB", "DE", "NL", "FR", "IE"])))
        lines.append("Date of birth: %s" % c.dob("eu"))
        lines.append("Salary: %s brutto/Jahr" % c.salary("€") if c.chance(0.3) else
                     "Salary: %s/yr" % c.salary("€"))
    lines.append("Laptop: MacBook Pro, asset tag LT-%s, serial C02%s" % (
        rstr(c.rng, DIGITS, 5), rstr(c.rng, UPPER + DIGITS, 9)))
    manager = c.person()
    lines.append("Manager: %s (%s)" % (manager, c.email(manager, company=True)))
    ask = c.pick(["Draft a welcome email and a first-week checklist for this new hire.",
                  "Fill the payroll setup form from these notes; output JSON.",
                  "Summarize for the IT provisioning ticket; only what IT needs."])
    tool = None
    if us and c.chance(0.4):
        tool = {"name": "hris_lookup", "description": "Read an employee record from the HRIS",
                "args": {"employee": name, "fields": "ssn,phone,email"},
                "result": {"employee_id": "E%s" % rstr(c.rng, DIGITS, 6), "ssn": c.ssn(),
                           "work_phone": c.phone("US"), "work_email": c.email(name, company=True),
                           "hired": start}}
    return Conv("You are an HR operations assistant. Be accurate.",
                [("user", ask + "\n\n" + "\n".join(lines))], tool=tool)


def sc_invoice(c):
    seller = c.pick(COMPANIES)
    country = c.pick(["DE", "FR", "NL", "IT", "ES", "GB", "BE", "AT", "CH"])
    issued = datetime.date(2024, 1, 1) + datetime.timedelta(days=c.rng.randrange(600))
    lines = ["INVOICE %s-%d" % (rstr(c.rng, UPPER, 3), c.rng.randrange(10000, 99999)),
             "Date: %s   Due: %s" % (issued.strftime("%d.%m.%Y"),
                                     (issued + datetime.timedelta(days=30)).strftime("%d.%m.%Y")),
             "From: %s, VAT %s%s" % (seller, country, rstr(c.rng, DIGITS, 9)),
             "Billing contact: %s, %s" % (c.email(company=True), c.phone(country if country in
                                                                          ("DE", "FR", "NL", "IT",
                                                                           "ES", "GB", "CH")
                                                                          else None)),
             "", "Qty  Description                      Unit       Total"]
    total = 0
    eur = lambda cents: ("%.2f" % (cents / 100.0)).replace(".", ",") + " €"  # noqa: E731
    for _ in range(c.rng.randrange(2, 6)):
        qty, unit = c.rng.randrange(1, 20), c.rng.randrange(500, 90000)
        total += qty * unit
        lines.append("%-4d %-32s %-10s %s" % (qty, c.pick(PRODUCTS), eur(unit), eur(qty * unit)))
    lines += ["", "Net %s, VAT 20%% %s" % (eur(total), eur(total // 5)),
              "Total due: %s" % eur(total + total // 5),
              "Pay to IBAN %s, BIC %s" % (c.iban(country), {
                  "DE": "DEUTDEFFXXX", "FR": "BNPAFRPP", "NL": "ABNANL2A", "IT": "UNCRITMM",
                  "ES": "CAIXESBB", "GB": "BARCGB22", "BE": "GEBABEBB", "AT": "BKAUATWW",
                  "CH": "UBSWCHZH80A"}[country]),
              "Reference: %s" % c.order16()]
    if c.chance(0.3):
        lines.append("Note: our old account %s is closed." % c.iban(country))
    if c.chance(0.2):
        lines.append("(Sample remittance in our docs uses %s; do not pay there.)" % c.doc_iban())
    ask = c.pick(["Extract the invoice fields (number, dates, totals, IBAN, VAT id) as JSON.",
                  "Check this invoice for arithmetic errors.",
                  "Translate this invoice to English and keep the layout."])
    return Conv(None, [("user", ask + "\n\n" + "\n".join(lines))])


def sc_chat_transcript(c):
    cust = c.person()
    first = cust.split()[0]
    agent = c.pick(FIRST)
    clock = iter(sorted(c.rng.sample(range(60), 8)))
    t = [
        "[09:%02d] %s: hi, I need to update the card on my subscription" % (next(clock), first),
        "[09:%02d] %s (agent): Sure! Can you confirm the email on the account?" % (
            next(clock), agent),
    ]
    email = c.email(cust)
    t.append("[09:%02d] %s: %s" % (next(clock), first, email))
    k = c.rng.random()
    if k < 0.6:
        t.append("[09:%02d] %s: the new card is %s exp %02d/%d cvc %03d" % (
            next(clock), first, c.card(), c.rng.randrange(1, 13), c.rng.randrange(26, 31),
            c.rng.randrange(1000)))
        t.append("[09:%02d] %s (agent): Please never share the full card number in chat. I've "
                 "sent a secure link to %s instead." % (next(clock), agent, email))
    elif k < 0.75:
        t.append("[09:%02d] %s: can you call me instead? %s" % (next(clock), first, c.phone()))
    else:
        t.append("[09:%02d] %s: my order number is %s" % (next(clock), first, c.order16()))
    if c.chance(0.4):
        t.append("[09:%02d] %s: also my SSN for the tax form is %s" % (next(clock), first,
                                                                      c.ssn(c.pick(["dash", "bare"]))))
    t.append("[09:%02d] %s (agent): Done, anything else?" % (next(clock), agent))
    ask = c.pick(["Summarize this chat in two sentences and tag the intent.",
                  "Rate the agent's handling (1-5) and explain.",
                  "Write the CRM note for this conversation."])
    return Conv("You review customer support chats.", [("user", ask + "\n\n" + "\n".join(t))])


ML = {
    "de": ("Bitte fasse diese Kundenanfrage zusammen und schlage eine Antwort vor.",
           "Von: {name} <{email}>\nTel.: {phone}\nBetreff: Rückerstattung Bestellung {order}\n\n"
           "Guten Tag,\n\nich habe am {date} einen {product} bestellt, der leider defekt ankam. "
           "Bitte überweisen Sie den Betrag von {price} auf mein Konto:\nIBAN {iban}\n"
           "Kontoinhaber: {name}\n\nMit freundlichen Grüßen\n{name}", "DE", "eu"),
    "fr": ("Résume ce message client et propose une réponse polie.",
           "De : {name} <{email}>\nTél : {phone}\nObjet : remboursement commande {order}\n\n"
           "Bonjour,\n\nma commande du {date} ({product}) n'est jamais arrivée. Merci de me "
           "rembourser {price} sur mon compte : IBAN {iban}.\n\nCordialement,\n{name}", "FR", "fr"),
    "es": ("Resume esta reclamación y redacta una respuesta.",
           "De: {name} <{email}>\nTeléfono: {phone}\nAsunto: devolución del pedido {order}\n\n"
           "Hola,\n\nel {date} compré un {product} y llegó roto. Por favor, devuelvan {price} a mi "
           "cuenta IBAN {iban}.\n\nUn saludo,\n{name}", "ES", "fr"),
    "it": ("Riassumi questa email e proponi una risposta.",
           "Da: {name} <{email}>\nCellulare: {phone}\nOggetto: rimborso ordine {order}\n\n"
           "Buongiorno,\n\nil {date} ho ordinato un {product} ma è arrivato danneggiato. Vi prego di "
           "accreditare {price} sul mio conto IBAN {iban}.\n\nCordiali saluti,\n{name}", "IT", "fr"),
    "nl": ("Vat deze klacht samen en stel een antwoord voor.",
           "Van: {name} <{email}>\nTelefoon: {phone}\nOnderwerp: terugbetaling bestelling {order}\n\n"
           "Goedemiddag,\n\nop {date} heb ik een {product} besteld maar het is nooit aangekomen. "
           "Graag {price} terugstorten op IBAN {iban}.\n\nMet vriendelijke groet,\n{name}", "NL", "eu"),
    "pt": ("Resuma esta mensagem do cliente e sugira uma resposta.",
           "De: {name} <{email}>\nTelefone: {phone}\nAssunto: reembolso do pedido {order}\n\n"
           "Olá,\n\nno dia {date} comprei um {product} que chegou com defeito. Peço o reembolso de "
           "{price} na conta IBAN {iban}.\n\nAtenciosamente,\n{name}", "PT", "fr"),
    "pl": ("Podsumuj tę wiadomość i zaproponuj odpowiedź.",
           "Od: {name} <{email}>\nTel.: {phone}\nTemat: zwrot za zamówienie {order}\n\n"
           "Dzień dobry,\n\n{date} zamówiłem {product}, który dotarł uszkodzony. Proszę o zwrot "
           "{price} na rachunek IBAN {iban}.\n\nPozdrawiam,\n{name}", "PL", "eu"),
    "ja": ("以下の問い合わせを要約し、返信案を作成してください。",
           "氏名：{name}\nメール：{email}\n電話：{phone}\n件名：注文 {order} の返金について\n\n"
           "お世話になっております。{date}に{product}を注文しましたが、破損した状態で届きました。"
           "返金（{price}）をお願いいたします。\n\nよろしくお願いいたします。", "JP", "iso"),
    "sv": ("Sammanfatta det här ärendet och föreslå ett svar.",
           "Från: {name} <{email}>\nTelefon: {phone}\nÄmne: återbetalning order {order}\n\n"
           "Hej,\n\njag beställde en {product} den {date} men den kom aldrig fram. Sätt in {price} på "
           "IBAN {iban}.\n\nVänliga hälsningar,\n{name}", "SE", "iso"),
    "de-ch": ("Fasse diese Anfrage zusammen.",
              "Von: {name} <{email}>\nTel.: {phone}\nBetreff: Gutschrift Auftrag {order}\n\n"
              "Grüezi\n\nAm {date} habe ich {product} bestellt. Bitte erstatten Sie {price} auf "
              "IBAN {iban}.\n\nFreundliche Grüsse\n{name}", "CH", "eu"),
}


ML_PRODUCTS = {
    "de": ["Kaffeevollautomat", "Bürostuhl", "Wanderrucksack"], "de-ch": ["Velohelm", "Bürostuhl"],
    "fr": ["aspirateur robot", "fauteuil de bureau", "casque audio"],
    "es": ["robot aspirador", "silla de oficina", "auriculares"],
    "it": ["macinacaffè", "sedia da ufficio", "zaino da trekking"],
    "nl": ["stofzuiger", "bureaustoel", "koptelefoon"], "pt": ["aspirador", "cadeira de escritório"],
    "pl": ["ekspres do kawy", "krzesło biurowe"], "ja": ["コーヒーミル", "オフィスチェア"],
    "sv": ["kaffebryggare", "kontorsstol"],
}


def sc_multilingual(c, lang=None):
    lang = lang or c.pick(sorted(ML))
    ask, tmpl, country, dfmt = ML[lang]
    name = c.person() if lang != "ja" else c.pick(["山田 太郎", "佐藤 花子", "鈴木 健", "高橋 美咲"])
    email = (c.P("email", c.pick(["taro.yamada", "hanako.sato", "k.suzuki", "misaki.t"]) + "@" +
                 c.pick(["sakura-trading.co.jp", "yahoo.co.jp", "gmail.com"]))
             if lang == "ja" else c.email(name))
    national = country in ("DE", "FR", "NL", "JP", "GB") and c.chance(0.7)
    phone_country = country if country != "PT" else c.pick(["BR", "ES"])
    text = tmpl.format(
        name=name, email=email, phone=c.phone(phone_country, national=national),
        order=c.order_grouped() if c.chance(0.5) else c.order16(), date=c.date(dfmt),
        product=c.pick(ML_PRODUCTS.get(lang, PRODUCTS)), price=c.price("€"),
        iban=c.iban(country) if "{iban}" in tmpl else "")
    if c.chance(0.25):
        text += "\n\n(P.S. %s)" % c.pick(["alte IBAN %s bitte löschen" % c.bad_iban(),
                                          "ancien RIB %s à supprimer" % c.bad_iban(),
                                          "ref %s" % c.uuid()])
    return Conv(None, [("user", ask + "\n\n" + text)])


def sc_incident(c):
    lines = []
    # some pastes are long (bodies over the 16 KiB capture chunk): the extra lines are routine
    # ones, so that one long file does not outweigh the rest of a type's positives
    n = c.rng.randrange(5, 11)
    total = n if c.chance(0.7) else c.rng.randrange(120, 260)
    for i in range(total):
        t = c.ts()
        k = c.rng.random() if i < n else c.pick([0.4, 0.85])
        if k < 0.3:
            lines.append('%s %s "POST /v1/orders HTTP/1.1" 401 auth="Bearer %s" rid=%s' % (
                t, c.ip(False), c.jwt(c.email_value() if c.chance(0.3) else None), c.uuid()))
        elif k < 0.38:
            lines.append('%s cloudtrail {"eventName":"GetObject","userIdentity":{"accessKeyId":"%s",'
                         '"arn":"arn:aws:sts::%s:assumed-role/etl/%s"},"sourceIPAddress":"%s"}' % (
                             t, c.aws_key(), rstr(c.rng, DIGITS, 12), rstr(c.rng, DIGITS, 10),
                             c.ip(False)))
        elif k < 0.45:
            lines.append("%s pod=checkout-%s-%s image=sha256:%s restarts=%d" % (
                t, rstr(c.rng, HEX, 9), rstr(c.rng, LOWER + DIGITS, 5), c.sha256(),
                c.rng.randrange(1, 9)))
        elif k < 0.55:
            lines.append("%s notify-svc posting to %s failed: 404 no_service" % (t, c.slack_webhook()))
        elif k < 0.65:
            lines.append("%s slack client init token=%s scopes=chat:write" % (t, c.slack()))
        elif k < 0.8:
            lines.append("%s build=%s version=%s commit=%s deployed by %s" % (
                t, c.epoch_s(), c.version(), c.sha1(), c.email(company=True)))
        else:
            lines.append("%s upstream %s:%d reset, retry in %dms (trace %s)" % (
                t, c.ip(), c.pick([443, 5432, 6379]), c.rng.randrange(100, 5000), c.uuid()))
    if c.chance(0.3):
        lines.append("session cookie sample (from jwt.io, for the repro): %s" % c.N(
            "documentation JWT", DOC_JWT))
    ask = c.pick(["Write the incident timeline from these logs.",
                  "What is the root cause? Logs below.",
                  "Draft the postmortem summary for leadership."])
    return Conv("You are an incident commander's assistant.",
                [("user", ask + "\n\n```\n" + "\n".join(lines) + "\n```")])


def sc_data_export(c):
    rows = ["id,name,email,phone,ssn,signup"]
    for i in range(c.rng.randrange(3, 8)):
        n = c.person()
        ssn = c.ssn() if c.chance(0.6) else c.bad_ssn() if c.chance(0.5) else c.masked_ssn()
        rows.append("%d,%s,%s,%s,%s,%s" % (1000 + i, n, c.email(n) if c.chance(0.85) else
                                           c.doc_email(), c.phone("US"), ssn, c.epoch_s()))
    ask = c.pick(["Normalize the phone numbers in this CSV to E.164 and flag invalid rows.",
                  "Find duplicate customers in this export.",
                  "Write a pandas script that loads this CSV with the right dtypes."])
    return Conv(None, [("user", ask + "\n\n" + "\n".join(rows))])


def sc_devops(c):
    kind = c.pick(["actions", "npmrc", "gitlab", "docker", "curl", "aws_credentials", "ssh_deploy",
                   "internal_api"])
    if kind == "actions":
        log = ("Run gh pr create --fill\n  env:\n    GH_TOKEN: %s\nHTTP 401: Bad credentials "
               "(https://api.github.com/graphql)\nError: Process completed with exit code 1.\n"
               "##[debug]job id %s, run attempt %d") % (c.github(), c.uuid(), c.rng.randrange(1, 4))
        ask = "Why does this GitHub Actions step fail with Bad credentials?"
    elif kind == "npmrc":
        log = ("$ cat ~/.npmrc\n//registry.npmjs.org/:_authToken=%s\n@lumenfold:registry="
               "https://npm.pkg.github.com\n//npm.pkg.github.com/:_authToken=%s\n$ npm publish\n"
               "npm ERR! 403 Forbidden - PUT https://registry.npmjs.org/@lumenfold%%2fui - "
               "package version %s already exists") % (c.npm(), c.github("ghp"), c.version())
        ask = "npm publish fails with 403, what do I do?"
    elif kind == "gitlab":
        log = ("$ curl --header \"PRIVATE-TOKEN: %s\" "
               "\"https://gitlab.com/api/v4/projects/%d/pipelines?ref=main\"\n"
               "{\"message\":\"403 Forbidden\"}\n$ echo $CI_JOB_TOKEN | wc -c\n%d") % (
            c.gitlab(), c.rng.randrange(1000000, 60000000), c.rng.randrange(20, 30))
        ask = "Why do I get 403 from the GitLab API with my token?"
    elif kind == "docker":
        log = ("$ docker run -e OPENAI_API_KEY=%s -e ANTHROPIC_API_KEY=%s -p 8080:8080 "
               "ghcr.io/lumenfold/agent@sha256:%s\nstarting agent %s on 0.0.0.0:8080\n"
               "openai.AuthenticationError: Error code: 401 - incorrect API key provided") % (
            c.openai(), c.anthropic(), c.sha256(), c.version())
        ask = "The container says my OpenAI key is wrong, but it works locally."
    elif kind == "aws_credentials":
        log = ("$ cat ~/.aws/credentials\n[default]\naws_access_key_id = %s\naws_secret_access_key = %s"
               "\n\n[ci]\naws_access_key_id = %s\naws_secret_access_key = %s\n$ aws sts "
               "get-caller-identity --profile ci\nAn error occurred (InvalidClientTokenId)") % (
            c.aws_key(), c.aws_secret(), c.aws_key(), c.aws_secret())
        ask = "Why does the ci profile fail while default works?"
    elif kind == "ssh_deploy":
        log = ("$ echo \"$DEPLOY_KEY\" > key && chmod 600 key && cat key\n%s\n$ ssh -i key "
               "deploy@%s\nLoad key \"key\": error in libcrypto\ndeploy@%s: Permission denied "
               "(publickey).") % (c.private_key(c.pick(["OPENSSH", "RSA"])), c.ip(), c.ip())
        ask = "The CI deploy step can't use the SSH key, here's the debug output."
    elif kind == "internal_api":
        log = ("$ curl -s https://api.lumenfold.io/v2/orders/%s -H \"Authorization: Bearer %s\"\n"
               "{\"error\":\"token_expired\",\"request_id\":\"%s\"}\n$ date +%%s\n%s") % (
            c.order16(), c.jwt(), c.uuid(), c.epoch_s())
        ask = "Why is this token expired already? I just logged in."
    else:
        log = ("$ curl https://api.sendgrid.com/v3/mail/send -H \"Authorization: Bearer %s\" "
               "-d @mail.json\n{\"errors\":[{\"message\":\"The from address does not match a "
               "verified Sender Identity\"}]}\n$ cat mail.json\n{\"from\":{\"email\":\"%s\"},"
               "\"personalizations\":[{\"to\":[{\"email\":\"%s\"}]}]}") % (
            c.sendgrid(), c.email(company=True), c.email())
        ask = "SendGrid rejects my mail, why?"
    if c.chance(0.3):
        log += "\n$ env | grep -i key\nSTRIPE_KEY=%s\nMAPS_KEY=%s" % (c.stripe(), c.google())
    return Conv(None, [("user", ask + "\n\n```\n" + log + "\n```")])


def sc_docs_question(c):
    qs = [
        "Stripe docs say to test with %s and %s. Why does my integration decline the second one?"
        % (c.test_card(), c.test_card()),
        "How do I configure the AWS CLI? The docs show %s / %s." % (
            c.N("documentation AWS key", DOC_AWS_ID), c.N("documentation AWS key", DOC_AWS_SECRET)),
        "In the OpenAI quickstart they write `export OPENAI_API_KEY=%s`. Where do I put that on "
        "Windows?" % c.placeholder_key("openai"),
        "Is %s a valid IBAN? My validator says yes." % c.doc_iban(),
        "What does the jwt.io sample token %s contain?" % c.N("documentation JWT", DOC_JWT),
        "Why is %s rejected as an SSN by our form?" % c.bad_ssn(),
        "My regex flags %s and %s as emails, how do I exclude them?" % (c.non_email(),
                                                                         c.non_email()),
        "Should placeholder addresses like %s be allowed in production?" % c.doc_email(),
        "Our order ids look like %s. Can a card-number detector confuse them?" % c.order16(),
        "Is the IMEI %s stored anywhere on the SIM?" % c.imei(),
        "What's the difference between %s and %s for the Anthropic SDK?" % (
            c.placeholder_key("anthropic"), c.placeholder_key("generic")),
        "How do I parse %s (ISBN) and %s in Python?" % (c.product_code(), c.product_code()),
    ]
    picks = c.rng.sample(qs, c.rng.randrange(1, 4))
    return Conv("You are a helpful developer assistant.", [("user", "\n\n".join(picks))])


def sc_analytics(c):
    rows = ["event_id,user_hash,ts_ms,ip,app_version,amount,country,trace"]
    for _ in range(c.rng.randrange(5, 12)):
        rows.append("%s,%s,%s,%s,%s,%s,%s,%s" % (
            c.uuid(), c.sha256()[:40] if c.chance(0.3) else c.sha256(), c.epoch_ms(), c.ip(False),
            c.version(), c.price("").replace(",", ""), c.pick(["US", "DE", "FR", "GB", "JP"]),
            c.blob(12)))
    extra = c.pick(["Orders table has ~%s rows; ids are 16 digits like %s." % (
        "{:,}".format(c.rng.randrange(10 ** 6, 10 ** 8)), c.order16()),
        "Build ids: %s, %s." % (c.epoch_s(), c.sha1()[:12]),
        "Tracking ids look like %s." % c.tracking()])
    ask = c.pick(["Suggest indexes for this events table.",
                  "Write a SQL query for daily revenue per country from this sample.",
                  "What anomalies do you see in this sample?"])
    return Conv("You are a data engineer.", [("user", ask + "\n" + extra + "\n\n" + "\n".join(rows))])


def sc_security_review(c):
    kind = c.pick(["pem", "pem", "pem_env", "jwt", "rotate", "ssh", "ssh"])
    if kind == "pem":
        body = ("I'm trying to load this key in Go and get `x509: failed to parse private key`:\n\n"
                "%s\n\nThe cert fingerprint is %s." % (c.private_key(c.pick(["RSA", "EC", "PKCS8"])),
                                                       c.sha256()))
    elif kind == "pem_env":
        body = ("Vercel env var is set like this but JWT signing fails:\n\nJWT_PRIVATE_KEY=\"%s\"\n"
                "JWT_ISSUER=https://auth.lumenfold.io/\nJWT_KID=%s" % (
                    c.private_key("PKCS8", escaped=True), rstr(c.rng, HEX, 16)))
    elif kind == "jwt":
        email = c.email_value() if c.chance(0.4) else None
        body = ("Is this token expired? It's from our staging login:\n%s\n\nAnd this one from prod "
                "logs:\n%s" % (c.jwt(email), c.jwt()))
        if c.chance(0.4):
            body += "\n\nFor comparison the jwt.io sample is %s" % c.N("documentation JWT", DOC_JWT)
    elif kind == "rotate":
        keys = [c.any_key() for _ in range(c.rng.randrange(3, 7))]
        body = ("These were found in a public gist, which services do they belong to and how do I "
                "rotate each?\n\n" + "\n".join("- " + k for k in keys) +
                "\n- %s (I think this one is a placeholder)" % c.placeholder_key())
    else:
        body = ("ssh says `Load key \"deploy_key\": invalid format`. Contents:\n\n%s\n\n"
                "Public key comment: %s" % (c.private_key("OPENSSH"), c.email(company=True)))
    return Conv("You are an application security engineer.", [("user", body)])


def sc_rag(c):
    chunks = []
    for _ in range(c.rng.randrange(3, 7)):
        k = c.rng.random()
        if k < 0.3:
            n = c.person()
            chunks.append("Customer %s (%s, %s) reported a billing issue on %s." % (
                n, c.email(n), c.phone(), c.date("iso")))
        elif k < 0.45:
            chunks.append("Refund approved to IBAN %s for ticket T-%d." % (
                c.iban(), c.rng.randrange(10000, 99999)))
        else:
            chunks.append(c.pick([
                "To reset your password, open Settings > Security and choose 'Reset'.",
                "Shipping to the EU takes 3-5 business days; customs fees are included.",
                "Our API rate limit is 600 requests per minute per key (see docs v%s)." % c.version(),
                "Release %s fixes the CSV export bug (build %s)." % (c.version(), c.sha1()[:10]),
                "Contact %s for partnership questions." % c.doc_email(),
            ]))
    return Conv(chunks=chunks)


def sc_key_paste(c):
    """Developers pasting provider calls, keys included, into an assistant."""
    kind = c.pick(["curl_openai", "py_anthropic", "gemini_url", "quota", "langchain",
                   "editor_config", "js_multi", "slack_bolt", "stripe_webhook"])
    if kind == "curl_openai":
        text = ("This returns 401, what's wrong?\n\ncurl https://api.openai.com/v1/chat/completions "
                "\\\n  -H \"Content-Type: application/json\" \\\n  -H \"Authorization: Bearer %s\" \\\n"
                "  -H \"OpenAI-Organization: org-%s\" \\\n  -d '{\"model\": \"gpt-4o-mini\", "
                "\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}]}'" % (
                    c.openai(), rstr(c.rng, ALNUM, 24)))
    elif kind == "py_anthropic":
        text = ("import anthropic\n\nclient = anthropic.Anthropic(api_key=\"%s\")\n"
                "msg = client.messages.create(model=\"claude-3-5-haiku-20241022\", max_tokens=256,\n"
                "    messages=[{\"role\": \"user\", \"content\": \"ping\"}])\n\n"
                "Why do I get `anthropic.AuthenticationError: invalid x-api-key`?" % c.anthropic())
    elif kind == "gemini_url":
        text = ("fetch('https://generativelanguage.googleapis.com/v1beta/models/gemini-1.5-flash:"
                "generateContent?key=%s', { method: 'POST', body: JSON.stringify(req) })\n\n"
                "CORS error in the browser. How do I fix it?" % c.google())
    elif kind == "quota":
        keys = [c.pick([c.openai, c.anthropic, c.google])() for _ in range(c.rng.randrange(1, 3))]
        text = ("My key %s started returning 429 insufficient_quota on %s at %s. Is it revoked? "
                "Request id %s." % (" and ".join(keys), c.date("iso"), c.ts(), c.uuid()))
    elif kind == "langchain":
        text = ("from langchain_openai import ChatOpenAI\nfrom langchain_anthropic import ChatAnthropic"
                "\n\nfast = ChatOpenAI(model=\"gpt-4o-mini\", openai_api_key=\"%s\")\n"
                "smart = ChatAnthropic(model=\"claude-3-5-sonnet-20241022\", anthropic_api_key=\"%s\")"
                "\n\nHow do I add a fallback from smart to fast?" % (c.openai(), c.anthropic()))
    elif kind == "editor_config":
        cfg = {"models": [{"title": "Claude", "provider": "anthropic", "model": "claude-3-5-sonnet",
                           "apiKey": c.anthropic()},
                          {"title": "GPT-4o", "provider": "openai", "model": "gpt-4o",
                           "apiKey": c.openai() if c.chance(0.6) else c.placeholder_key("openai")},
                          {"title": "Gemini", "provider": "gemini", "model": "gemini-1.5-pro",
                           "apiKey": c.google()}],
               "telemetry": False, "installId": c.uuid()}
        text = ("My editor's config.json doesn't load the models, is the format right?\n\n" +
                json.dumps(cfg, indent=2))
    elif kind == "slack_bolt":
        text = ("from slack_bolt import App\n\napp = App(token=\"%s\",\n"
                "          signing_secret=os.environ[\"SLACK_SIGNING_SECRET\"])\n"
                "# user token for search: %s\n\n@app.event(\"app_mention\")\ndef on_mention(event, say):"
                "\n    say(summarize(event[\"text\"]))\n\nHow do I call Claude from on_mention?" % (
                    c.slack("xoxb"), c.slack("xoxp")))
    elif kind == "stripe_webhook":
        text = ("@app.post(\"/stripe/webhook\")\nasync def hook(req):\n    stripe.api_key = \"%s\"\n"
                "    event = stripe.Webhook.construct_event(await req.body(), req.headers[\"stripe-"
                "signature\"], os.environ[\"STRIPE_WEBHOOK_SECRET\"])\n\nI get 'No signatures found "
                "matching the expected signature'. Event id evt_%s." % (
                    c.stripe(), rstr(c.rng, ALNUM, 24)))
    else:
        text = ("// lib/clients.ts\nexport const openai = new OpenAI({ apiKey: '%s' });\n"
                "export const anthropic = new Anthropic({ apiKey: '%s' });\n"
                "export const stripe = new Stripe('%s', { apiVersion: '2024-06-20' });\n\n"
                "Vercel build fails with 'Module not found: Can't resolve openai'." % (
                    c.openai(), c.anthropic(), c.stripe()))
    if c.chance(0.2):
        text += "\n\n(the docs example uses %s)" % c.placeholder_key()
    return Conv(c.pick([None, "You are a coding assistant."]), [("user", text)])


def sc_leaked_keys(c):
    """A list of credentials found somewhere, pasted for triage."""
    # consecutive kinds from a random start: every kind gets its share, with little variance
    kinds = [c.aws_pair, c.github, c.openai, c.anthropic, c.stripe, c.slack, c.google, c.gitlab,
             c.sendgrid, c.twilio, c.npm, c.slack_webhook, c.private_key, c.jwt]
    start, n = c.rng.randrange(len(kinds)), c.rng.randrange(5, 10)
    keys = [kinds[(start + i) % len(kinds)]() for i in range(n)]
    c.rng.shuffle(keys)
    src = c.pick(["a public gist", "our Confluence export", "a Jira attachment",
                  "the mobile app bundle", "a pastebin link someone reported"])
    lines = ["These were found in %s on %s. Which services do they belong to, how bad is each, and "
             "how do I rotate them?" % (src, c.date("iso")), ""]
    for k in keys:
        style = c.pick(["- %s", "* `%s`", "%s", "- found: %s (line {})".format(c.rng.randrange(1, 900))])
        lines.append(style % k)
    if c.chance(0.5):
        lines.append("- %s (probably a placeholder)" % c.placeholder_key())
    if c.chance(0.3):
        lines.append("- %s (scanner flagged it, looks like a hash)" % c.sha256())
    return Conv("You are an application security engineer.", [("user", "\n".join(lines))])


def sc_general(c):
    """Everyday prompts with no personal data or secrets, full of number-shaped text."""
    r = c.rng
    items = [
        "Summarize the meeting: Priya and Jonas agreed to ship %s on %s; budget %s; the load test "
        "peaked at %d rps from %s. Action items: Jonas updates the runbook, Priya books the "
        "review." % (c.version(), c.date("iso"), c.price(), r.randrange(500, 9000), c.ip()),
        "Translate to German: \"Our spring sale ends %s: 20%% off all orders over 50 EUR, "
        "code SPRING-%s.\"" % (c.date("us"), rstr(r, UPPER + DIGITS, 5)),
        "Write a SQL query returning orders (id bigint, e.g. %s) created after epoch %s with "
        "total > %s." % (c.order16(), c.epoch_s(), c.price()),
        "Explain this nginx log line: %s - - [11/Jun/2024:08:15:42 +0200] \"GET /api/v2/items?"
        "page=3 HTTP/2.0\" 200 %d \"-\" \"curl/8.5.0\" rt=0.042 req=%s" % (
            c.ip(False), r.randrange(200, 90000), c.uuid()),
        "Write a regex for our part numbers, e.g. %s and %s." % (c.product_code(),
                                                                  c.product_code()),
        "Kubernetes event: pod worker-%s OOMKilled at %s (node %s, image digest sha256:%s). "
        "What limits should I set?" % (rstr(r, LOWER + DIGITS, 5), c.epoch_ms(), c.ip(),
                                       c.sha256()),
        "Convert these timestamps to ISO 8601: %s, %s, %s." % (c.epoch_ms(), c.epoch_s(),
                                                               c.epoch_ms()),
        "Our shipment %s left the warehouse on %s; how long does DHL Express take to Osaka?" % (
            c.tracking(), c.date("eu")),
        "Is git commit %s or %s the one that introduced the bug? Diff stats: +%d -%d." % (
            c.sha1(), c.sha1()[:12], r.randrange(1, 400), r.randrange(1, 400)),
        "Give me a checklist for rotating the TLS certificate with serial %s (SHA-256 %s)." % (
            ":".join(rstr(r, HEX, 2) for _ in range(16)).upper(), c.sha256()),
        "Our support line used to be written as %s in the old brochure template, which is "
        "actually a part number. Rewrite the brochure intro." % c.product_code(),
        "Write pytest cases for our validators. Must be rejected: SSNs %s, %s and %s; IBANs %s "
        "and %s. Accepted only in Stripe test mode: cards %s and %s." % (
            c.bad_ssn(), c.bad_ssn(), c.bad_ssn(), c.bad_iban(), c.bad_iban(), c.test_card(),
            c.test_card()),
        "Our form rejected %s as an SSN and %s as an IBAN. Are the validators right?" % (
            c.bad_ssn(), c.bad_iban()),
        "Compute the monthly payment for a %s loan at %.2f%% over %d months." % (
            c.price(), r.randrange(200, 900) / 100.0, r.choice([36, 48, 60, 120])),
    ]
    picks = c.rng.sample(items, c.rng.randrange(1, 4))
    return Conv(c.pick([None, "You are a helpful assistant.", "Answer briefly."]),
                [("user", "\n\n".join(picks))])


SCENARIOS = {
    "support_ticket": (sc_support_ticket, 14),
    "crm_note": (sc_crm_note, 12),
    "checkout_log": (sc_checkout_log, 12),
    "code_review": (sc_code_review, 26),
    "key_paste": (sc_key_paste, 24),
    "code_clean": (sc_code_clean, 18),
    "hr_note": (sc_hr_note, 10),
    "invoice": (sc_invoice, 10),
    "chat_transcript": (sc_chat_transcript, 12),
    "multilingual": (sc_multilingual, 20),
    "incident": (sc_incident, 10),
    "data_export": (sc_data_export, 7),
    "devops": (sc_devops, 20),
    "docs_question": (sc_docs_question, 18),
    "analytics": (sc_analytics, 12),
    "general": (sc_general, 26),
    "security_review": (sc_security_review, 18),
    "leaked_keys": (sc_leaked_keys, 18),
    "rag": (sc_rag, 6),
}


# -------------------------------------------------------------------------------------------------
# Request shapes


def call_id(c, prefix, n=24):
    return prefix + rstr(c.rng, ALNUM, n)


def tiny_png_b64(c):
    # A PNG signature and random bytes: stands in for a screenshot; decoders skip it as binary.
    return base64.b64encode(
        b"\x89PNG\r\n\x1a\n" + bytes(c.rng.randrange(256) for _ in range(180))).decode()


def alternate(turns):
    """Merge consecutive same-role turns (Anthropic and Gemini require alternation)."""
    out = []
    for role, text in turns:
        if out and out[-1][0] == role:
            out[-1] = (role, out[-1][1] + "\n\n" + text)
        else:
            out.append((role, text))
    return out


def body_openai_chat(c, conv):
    msgs = []
    if conv.system:
        msgs.append({"role": c.pick(["system", "system", "developer"]), "content": conv.system})
    for i, (role, text) in enumerate(conv.turns):
        if role == "user" and c.chance(0.3):
            parts = [{"type": "text", "text": text}]
            if conv.image or (i == 0 and c.chance(0.3)):
                parts.append({"type": "image_url", "image_url": {
                    "url": "data:image/png;base64," + tiny_png_b64(c), "detail": "low"}})
            msgs.append({"role": role, "content": parts})
        else:
            msgs.append({"role": role, "content": text})
    body = {"model": c.pick(MODELS_OPENAI), "messages": msgs}
    if conv.tool:
        t = conv.tool
        cid = call_id(c, "call_")
        msgs.append({"role": "assistant", "content": None, "tool_calls": [{
            "id": cid, "type": "function",
            "function": {"name": t["name"], "arguments": json.dumps(t["args"])}}]})
        msgs.append({"role": "tool", "tool_call_id": cid, "content": json.dumps(t["result"])})
        body["tools"] = [{"type": "function", "function": {
            "name": t["name"], "description": t["description"],
            "parameters": {"type": "object", "properties": {
                k: {"type": "string"} for k in t["args"]}, "required": sorted(t["args"])}}}]
    if c.chance(0.6):
        body["temperature"] = c.pick([0, 0.2, 0.3, 0.7, 1])
    body[c.pick(["max_tokens", "max_completion_tokens"])] = c.pick([256, 512, 1024, 2048])
    if c.chance(0.3):
        body["stream"] = True
        body["stream_options"] = {"include_usage": True}
    if c.chance(0.3):
        body["user"] = "user_" + c.sha256()[:32]
    if c.chance(0.2):
        body["response_format"] = {"type": "json_object"}
    return body


def body_openai_responses(c, conv):
    body = {"model": c.pick(MODELS_OPENAI)}
    if conv.system:
        body["instructions"] = conv.system
    if len(conv.turns) == 1 and not conv.tool and c.chance(0.5):
        body["input"] = conv.turns[0][1]
    else:
        items = []
        for role, text in conv.turns:
            kind = "input_text" if role == "user" else "output_text"
            items.append({"role": role, "content": [{"type": kind, "text": text}]})
        if conv.tool:
            t = conv.tool
            cid = call_id(c, "call_")
            items.append({"type": "function_call", "call_id": cid, "name": t["name"],
                          "arguments": json.dumps(t["args"])})
            items.append({"type": "function_call_output", "call_id": cid,
                          "output": json.dumps(t["result"])})
        body["input"] = items
    if c.chance(0.4):
        body["previous_response_id"] = "resp_" + rstr(c.rng, HEX, 48)
    if c.chance(0.5):
        body["store"] = False
    if c.chance(0.3):
        body["reasoning"] = {"effort": c.pick(["low", "medium"])}
    body["max_output_tokens"] = c.pick([512, 1024, 4096])
    return body


def body_anthropic(c, conv):
    body = {"model": c.pick(MODELS_ANTHROPIC), "max_tokens": c.pick([1024, 2048, 4096])}
    if conv.system:
        if c.chance(0.4):
            body["system"] = [{"type": "text", "text": conv.system,
                               "cache_control": {"type": "ephemeral"}}]
        else:
            body["system"] = conv.system
    msgs = []
    for role, text in alternate(conv.turns):
        if c.chance(0.4):
            content = [{"type": "text", "text": text}]
            if role == "user" and (conv.image or c.chance(0.15)):
                content.insert(0, {"type": "image", "source": {
                    "type": "base64", "media_type": "image/png", "data": tiny_png_b64(c)}})
            msgs.append({"role": role, "content": content})
        else:
            msgs.append({"role": role, "content": text})
    if conv.tool:
        t = conv.tool
        tid = call_id(c, "toolu_")
        msgs.append({"role": "assistant", "content": [
            {"type": "text", "text": "Let me look that up."},
            {"type": "tool_use", "id": tid, "name": t["name"], "input": t["args"]}]})
        msgs.append({"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": tid, "content": json.dumps(t["result"])}]})
        body["tools"] = [{"name": t["name"], "description": t["description"], "input_schema": {
            "type": "object", "properties": {k: {"type": "string"} for k in t["args"]}}}]
    body["messages"] = msgs
    if c.chance(0.4):
        body["metadata"] = {"user_id": c.sha256()}
    if c.chance(0.3):
        body["stream"] = True
    if c.chance(0.5):
        body["temperature"] = c.pick([0, 0.3, 0.7, 1])
    return body


def body_gemini(c, conv):
    contents = []
    for role, text in alternate(conv.turns):
        parts = [{"text": text}]
        if role == "user" and (conv.image or c.chance(0.15)):
            key = c.pick(["inlineData", "inline_data"])
            parts.append({key: {"mimeType" if key == "inlineData" else "mime_type": "image/png",
                                "data": tiny_png_b64(c)}})
        contents.append({"role": "user" if role == "user" else "model", "parts": parts})
    body = {"contents": contents}
    if conv.tool:
        t = conv.tool
        contents.append({"role": "model", "parts": [{"functionCall": {"name": t["name"],
                                                                      "args": t["args"]}}]})
        contents.append({"role": "user", "parts": [{"functionResponse": {
            "name": t["name"], "response": t["result"]}}]})
        body["tools"] = [{"functionDeclarations": [{"name": t["name"],
                                                    "description": t["description"]}]}]
    if conv.system:
        key = c.pick(["systemInstruction", "system_instruction"])
        body[key] = {"parts": [{"text": conv.system}]}
    body["generationConfig"] = {"temperature": c.pick([0.2, 0.4, 0.9]),
                                "maxOutputTokens": c.pick([1024, 2048, 8192])}
    if c.chance(0.3):
        body["generationConfig"]["responseMimeType"] = "application/json"
    if c.chance(0.4):
        body["safetySettings"] = [{"category": "HARM_CATEGORY_HARASSMENT",
                                   "threshold": "BLOCK_ONLY_HIGH"},
                                  {"category": "HARM_CATEGORY_DANGEROUS_CONTENT",
                                   "threshold": "BLOCK_MEDIUM_AND_ABOVE"}]
    return body


def body_embeddings(c, conv):
    return {"model": c.pick(["text-embedding-3-small", "text-embedding-3-large"]),
            "input": conv.chunks, "encoding_format": "float"}


def body_text(c, conv):
    parts = []
    if conv.system:
        parts.append(conv.system)
    for role, text in conv.turns:
        parts.append(text if len(conv.turns) == 1 else "%s: %s" % (role.capitalize(), text))
    if conv.tool:
        parts.append("Tool %s returned: %s" % (conv.tool["name"], json.dumps(conv.tool["result"])))
    return "\n\n".join(parts) + "\n"


SHAPES = {
    "openai-chat": body_openai_chat,
    "openai-responses": body_openai_responses,
    "anthropic": body_anthropic,
    "gemini": body_gemini,
    "text": body_text,
}


def serialize(c, body):
    if isinstance(body, str):
        return body
    style = c.pick(["compact", "compact", "compact", "spaced", "pretty", "php"])
    ascii_only = c.chance(0.5)
    if style == "compact":
        s = json.dumps(body, ensure_ascii=ascii_only, separators=(",", ":"))
    elif style == "spaced":
        s = json.dumps(body, ensure_ascii=ascii_only)
    elif style == "pretty":
        s = json.dumps(body, ensure_ascii=ascii_only, indent=2)
    else:
        # PHP's json_encode escapes '/' and non-ASCII; '/' only occurs inside strings.
        s = json.dumps(body, ensure_ascii=True, separators=(",", ":")).replace("/", "\\/")
    return s + ("\n" if c.chance(0.5) else "")


# -------------------------------------------------------------------------------------------------
# Decoding, counting and the audit


def decoded_strings(raw, is_json):
    """What the scanner reads: every JSON string value and integer literal, or the whole text."""
    if not is_json:
        return [(None, raw)]
    out = []

    def walk(v, key):
        if isinstance(v, dict):
            for k, x in v.items():
                walk(x, k)
        elif isinstance(v, list):
            for x in v:
                walk(x, key)
        elif isinstance(v, str):
            out.append((key, v))
        elif isinstance(v, int) and not isinstance(v, bool):
            out.append((key, str(v)))

    walk(json.loads(raw), None)
    return out


AUDIT = {
    # loose reference patterns; a hit must be explained by a registered value
    "email": [r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}"],
    "credit_card": [r"(?<![0-9A-Za-z])(?:\d[ -]?){12,18}\d(?![0-9A-Za-z])"],
    "us_ssn": [r"(?<![\d-])\d{3}[- ]\d{2}[- ]\d{4}(?![\d-])",
               r"(?i)(?:ssn|social security)\D{0,20}(\d{9})(?!\d)"],
    "phone": [r"\+\d{1,3}[ .-]?\(?\d{1,4}\)?(?:[ .-]?\d{2,5}){1,4}",
              r"(?<![\d-])\(?[2-9]\d{2}\)?[ .-]\d{3}[ .-]\d{4}(?![\d-])"],
    "iban": [r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]){10,30}"],
    "aws_access_key": [r"(?:AKIA|ASIA)[A-Z0-9*]{16}"],
    "aws_secret_key": [r"(?i)aws.?secret.?(?:access.?)?key\W{0,5}([A-Za-z0-9/+]{40})",
                       r"(?i)secret_key\W{0,5}([A-Za-z0-9/+]{40})"],
    "github_token": [r"gh[pousr]_[A-Za-z0-9]{36}", r"github_pat_[A-Za-z0-9_]{82}"],
    "openai_api_key": [r"sk-(?!ant-)[A-Za-z0-9_-]{20,}"],
    "anthropic_api_key": [r"sk-ant-[A-Za-z0-9_-]{20,}"],
    "stripe_secret_key": [r"[sr]k_(?:live|test)_[A-Za-z0-9]{10,}"],
    "slack_token": [r"xox[abposr]-[A-Za-z0-9-]{10,}"],
    "google_api_key": [r"AIza[0-9A-Za-z_-]{35}"],
    "private_key": [r"-----BEGIN [A-Z ]*PRIVATE KEY-----"],
    "jwt": [r"eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]+"],
    "gitlab_token": [r"glpat-[A-Za-z0-9_-]{20}"],
    "sendgrid_api_key": [r"SG\.[A-Za-z0-9_-]{16,}\.[A-Za-z0-9_-]{16,}"],
    "twilio_api_key": [r"\bSK[0-9a-fA-F]{32}\b"],
    "npm_token": [r"npm_[A-Za-z0-9]{36}"],
    "slack_webhook": [r"https://hooks\.slack\.com/services/[A-Za-z0-9/]+"],
}
# Only to confirm positives have a recognisable shape (too loose to hunt with: dates match it).
CONFIRM_ONLY = {"phone": [r"(?<![\d])0\d{1,4}[ -]\d{2,8}(?:[ -]\d{2,4}){0,3}"],
                "us_ssn": [r"(?<!\d)\d{9}(?!\d)"]}
IBAN_LEN = {"DE": 22, "GB": 22, "IE": 22, "FR": 27, "NL": 18, "ES": 24, "IT": 27, "CH": 21,
            "BE": 16, "AT": 20, "PL": 28, "SE": 24, "PT": 25, "DK": 18, "FI": 18, "LU": 20,
            "NO": 15}


def audit_hits(typ, text):
    """Spans in text that look like typ under the reference patterns (after cheap validation)."""
    spans = []
    for pat in AUDIT[typ]:
        for m in re.finditer(pat, text):
            g = 1 if m.groups() else 0
            s, e = m.span(g)
            v = text[s:e]
            if typ == "credit_card":
                d = re.sub(r"\D", "", v)
                if not (13 <= len(d) <= 19 and luhn_ok(d)):
                    continue
            elif typ == "phone" and pat.startswith(r"\+"):
                if not 8 <= len(re.sub(r"\D", "", v)) <= 15:
                    continue
            elif typ == "iban":
                compact = v.replace(" ", "")
                n = IBAN_LEN.get(compact[:2])
                if not n or len(compact) < n or iban_mod97(compact[:n]) != 1:
                    continue
                # the span up to the n-th alphanumeric character
                cnt, e = 0, s
                while cnt < n:
                    if text[e] != " ":
                        cnt += 1
                    e += 1
            spans.append((s, e))
    return spans


def occurrences(text, value):
    out, i = [], text.find(value)
    while i >= 0:
        out.append((i, i + len(value)))
        i = text.find(value, i + len(value))
    return out


def audit(name, text, c):
    """Check that the registry explains every reference-pattern hit, and vice versa."""
    errors = []
    spans = {}  # value -> [(s, e)]
    for v in list(c.pos) + list(c.neg):
        spans[v] = occurrences(text, v)
    for v, typ in c.pos.items():
        if not spans[v]:
            errors.append("%s: positive %s %r is not in the decoded text" % (name, typ, v))
        for w in list(c.pos) + list(c.neg):
            if w != v and v in w:
                errors.append("%s: positive %r is inside registered %r" % (name, v, w))
    for typ in AUDIT:
        hits = audit_hits(typ, text)
        own = [(s, e) for v, t in c.pos.items() if t == typ for (s, e) in spans[v]]
        other = [(s, e) for v in list(c.pos) + list(c.neg) if c.pos.get(v) != typ
                 for (s, e) in spans[v]]
        for s, e in hits:
            if any(a <= s and e <= b for a, b in own):
                continue
            if any(s < b and a < e for a, b in other):
                continue
            errors.append("%s: unexplained %s-like text %r" % (name, typ, text[s:e][:80]))
        confirm = hits + [m.span(1 if m.groups() else 0) for p in CONFIRM_ONLY.get(typ, [])
                          for m in re.finditer(p, text)]
        for s, e in own:
            if not any(a <= s and e <= b or s <= a and b <= e for a, b in confirm):
                errors.append("%s: positive %s %r has a shape the reference patterns miss" % (
                    name, typ, text[s:e][:80]))
    return errors


# -------------------------------------------------------------------------------------------------


def plan():
    """(scenario, shape) per file, fixed by SEED."""
    rng = random.Random("%d-plan" % SEED)
    jobs = []
    for sc, (_, n) in SCENARIOS.items():
        for i in range(n):
            if sc == "rag":
                shape = "openai-embeddings"
            else:
                shape = ["openai-chat", "anthropic", "gemini", "openai-responses", "text"][
                    (i + len(sc)) % 5]
            jobs.append((sc, shape))
    rng.shuffle(jobs)
    return jobs


def generate(out_dir):
    bodies = os.path.join(out_dir, "bodies")
    if os.path.isdir(bodies):
        shutil.rmtree(bodies)
    os.makedirs(bodies)
    labels, manifest, errors = {}, {}, []
    for idx, (sc, shape) in enumerate(plan(), 1):
        c = Ctx(random.Random("%d-%d" % (SEED, idx)))
        conv = SCENARIOS[sc][0](c)
        if shape == "openai-embeddings":
            body = body_embeddings(c, conv)
        else:
            body = SHAPES[shape](c, conv)
        raw = serialize(c, body)
        is_json = not isinstance(body, str)
        rel = "bodies/%03d-%s-%s.%s" % (idx, shape, sc, "json" if is_json else "txt")
        with open(os.path.join(out_dir, rel), "w", encoding="utf-8", newline="\n") as f:
            f.write(raw)
        strings = decoded_strings(raw, is_json)
        for key, s in strings:
            if key in ENUM_KEYS:
                for v in c.pos:
                    if v in s:
                        errors.append("%s: positive %r under enum key %r" % (rel, v, key))
        text = "\n".join(s for _, s in strings)
        errors += audit(rel, text, c)
        lab, pos, neg = {}, [], []
        for v, typ in c.pos.items():
            n = len(occurrences(text, v))
            lab[typ] = lab.get(typ, 0) + n
            pos.append({"type": typ, "value": v, "count": n})
        for v, kind in c.neg.items():
            n = len(occurrences(text, v))
            if n:
                neg.append({"kind": kind, "value": v, "count": n})
        labels[rel] = dict(sorted(lab.items()))
        manifest[rel] = {"scenario": sc, "shape": shape,
                         "positives": sorted(pos, key=lambda p: (p["type"], p["value"])),
                         "hard_negatives": sorted(neg, key=lambda p: (p["kind"], p["value"]))}
    if errors:
        raise SystemExit("gen.py: the corpus is inconsistent:\n  " + "\n  ".join(errors))
    for name, obj in (("labels.json", labels), ("manifest.json", manifest)):
        with open(os.path.join(out_dir, name), "w", encoding="utf-8", newline="\n") as f:
            json.dump(obj, f, indent=1, ensure_ascii=False, sort_keys=False)
            f.write("\n")
    return labels


def summary(labels):
    tot, files = {}, {}
    for lab in labels.values():
        for t, n in lab.items():
            tot[t] = tot.get(t, 0) + n
            files[t] = files.get(t, 0) + 1
    empty = sum(1 for lab in labels.values() if not lab)
    lines = ["%d files, %d without positives" % (len(labels), empty)]
    for t in sorted(tot):
        lines.append("  %-18s %4d occurrences in %3d files" % (t, tot[t], files[t]))
    return "\n".join(lines)


def check():
    tmp = tempfile.mkdtemp(prefix="lw-corpus-")
    try:
        generate(tmp)
        bad = []
        for name in ("labels.json", "manifest.json"):
            if not os.path.exists(os.path.join(HERE, name)) or not filecmp.cmp(
                    os.path.join(tmp, name), os.path.join(HERE, name), shallow=False):
                bad.append(name)
        new = sorted(os.listdir(os.path.join(tmp, "bodies")))
        old = sorted(os.listdir(os.path.join(HERE, "bodies"))) if os.path.isdir(
            os.path.join(HERE, "bodies")) else []
        bad += ["bodies/" + n for n in sorted(set(new) ^ set(old))]
        for n in sorted(set(new) & set(old)):
            if not filecmp.cmp(os.path.join(tmp, "bodies", n), os.path.join(HERE, "bodies", n),
                               shallow=False):
                bad.append("bodies/" + n)
        if bad:
            print("gen.py --check: %d committed files differ from a fresh generation:\n  %s" % (
                len(bad), "\n  ".join(bad[:20])), file=sys.stderr)
            return 1
        print("gen.py --check: %d bodies, labels and manifest match" % len(new))
        return 0
    finally:
        shutil.rmtree(tmp)


def explain(rel):
    with open(os.path.join(HERE, "manifest.json"), encoding="utf-8") as f:
        man = json.load(f)
    rel = rel[len("tests/corpus/"):] if rel.startswith("tests/corpus/") else rel
    if rel not in man:
        print("gen.py: %s is not in manifest.json" % rel, file=sys.stderr)
        return 2
    m = man[rel]
    print("%s  (scenario %s, shape %s)" % (rel, m["scenario"], m["shape"]))
    print("positives:")
    for p in m["positives"]:
        print("  %-18s x%d  %s" % (p["type"], p["count"], p["value"]))
    print("hard negatives:")
    for p in m["hard_negatives"]:
        print("  x%d  %-50s %s" % (p["count"], p["kind"], p["value"]))
    return 0


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default=HERE, help="corpus directory (default: this script's)")
    ap.add_argument("--check", action="store_true", help="verify the committed files are current")
    ap.add_argument("--explain", metavar="FILE", help="print one file's labelled values")
    a = ap.parse_args(argv)
    if a.explain:
        return explain(a.explain)
    if a.check:
        return check()
    labels = generate(a.out)
    print(summary(labels))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
