"""JAAS configuration strings as Kafka parses them (`sasl.jaas.config` and its per-listener,
per-mechanism forms):

    org.apache.kafka.common.security.plain.PlainLoginModule required
        username="admin" password="admin-secret" user_alice="alice-secret";

Each entry is a login module class name, a control flag (required, requisite, sufficient,
optional) and `key=value` options up to a `;`. The tokens are Java's StreamTokenizer's as Kafka
sets it up: words of letters, digits, '.', '-', '_' and '$' (not starting with a digit, '.' or
'-'), single- or double-quoted strings with backslash escapes, `//` and `/* */` comments. A value
must be a word or a quoted string: `user_bob=123` is refused, as Kafka refuses it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

PLAIN_LOGIN_MODULE = "org.apache.kafka.common.security.plain.PlainLoginModule"
SCRAM_LOGIN_MODULE = "org.apache.kafka.common.security.scram.ScramLoginModule"
OAUTHBEARER_LOGIN_MODULE = "org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule"
FLAGS = ("REQUIRED", "REQUISITE", "SUFFICIENT", "OPTIONAL")


class JaasError(ValueError):
    """A JAAS configuration Kafka would refuse, with Kafka's message."""


@dataclass(frozen=True)
class JaasEntry:
    login_module: str
    flag: str
    options: Mapping[str, str] = field(default_factory=dict)


_ESCAPES = {"a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v"}
WORD, NUMBER, QUOTED = "word", "number", "quoted"


def _is_word_start(c: str) -> bool:
    return c.isascii() and c.isalpha() or c in "_$" or ord(c) >= 0xA0


def _is_word_part(c: str) -> bool:
    return _is_word_start(c) or c.isascii() and c.isdigit() or c in ".-"


def _tokens(text: str):
    """(kind, value): words, numbers (a value Kafka refuses), quoted strings, and single characters."""
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if ord(c) <= 32:
            i += 1
        elif text.startswith("//", i) or c == "/" and not text.startswith("/*", i):
            end = text.find("\n", i)
            i = n if end < 0 else end + 1
        elif text.startswith("/*", i):
            end = text.find("*/", i + 2)
            i = n if end < 0 else end + 2
        elif c in "\"'":
            out, i = [], i + 1
            while i < n and text[i] not in (c, "\n", "\r"):
                if text[i] == "\\" and i + 1 < n:
                    i += 1
                    e = text[i]
                    if e in "01234567":  # octal: up to three digits (two when the first is above 3)
                        j, most = i, 3 if e <= "3" else 2
                        while j < n and j - i < most and text[j] in "01234567":
                            j += 1
                        out.append(chr(int(text[i:j], 8) & 0xFF))
                        i = j
                        continue
                    out.append(_ESCAPES.get(e, e))
                else:
                    out.append(text[i])
                i += 1
            i += 1  # the closing quote (a string may also end at the line's end)
            yield QUOTED, "".join(out)
        elif c.isascii() and c.isdigit() or c in ".-":
            j = i + 1
            while j < n and (text[j].isascii() and text[j].isdigit() or text[j] == "."):
                j += 1
            if j == i + 1 and c in ".-":
                yield c, c
            else:
                yield NUMBER, text[i:j]
            i = j
        elif _is_word_start(c):
            j = i + 1
            while j < n and _is_word_part(text[j]):
                j += 1
            yield WORD, text[i:j]
            i = j
        else:
            yield c, c
            i += 1


def parse_jaas(text: str) -> list[JaasEntry]:
    """The entries of a JAAS configuration string; JaasError with Kafka's message when it is bad."""
    tokens = list(_tokens(text))
    entries: list[JaasEntry] = []
    i = 0

    def value(k: int) -> str | None:
        kind, v = tokens[k]
        return v if kind in (WORD, QUOTED) else None

    while i < len(tokens):
        module = value(i)
        i += 1
        if i >= len(tokens):
            raise JaasError("Login module control flag not specified in JAAS config")
        flag = value(i)
        if flag is None or flag.upper() not in FLAGS:
            if flag is None:
                raise JaasError("Login module control flag is not available in the JAAS config")
            raise JaasError(f"Invalid login module control flag '{flag}' in JAAS config")
        i += 1
        options: dict[str, str] = {}
        while i < len(tokens) and tokens[i][0] != ";":
            key = value(i)
            if (i + 2 >= len(tokens) or tokens[i + 1][0] != "=" or value(i + 2) is None):
                raise JaasError(f"Value not specified for key '{key}' in JAAS config")
            options[key] = value(i + 2)
            i += 3
        if i >= len(tokens):
            raise JaasError("JAAS config entry not terminated by semi-colon")
        i += 1
        entries.append(JaasEntry(module or "", flag.upper(), options))
    if not entries:
        raise JaasError("Login module not specified in JAAS config")
    return entries


def option(entries: list[JaasEntry], key: str, login_module: str | None = None) -> str | None:
    """The first entry's value for `key` (among entries of `login_module`, if given)."""
    for e in entries:
        if login_module is None or e.login_module == login_module:
            if key in e.options:
                return e.options[key]
    return None


def plain_users(entries: list[JaasEntry]) -> dict[str, str]:
    """PLAIN's users, `user_<name>="<password>"` options of PlainLoginModule entries (first wins)."""
    users: dict[str, str] = {}
    for e in entries:
        if e.login_module == PLAIN_LOGIN_MODULE:
            for k, v in e.options.items():
                if k.startswith("user_"):
                    users.setdefault(k[5:], v)
    return users
