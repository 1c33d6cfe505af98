"""Who a connection is: Kafka's DefaultKafkaPrincipalBuilder.

- PLAINTEXT, and SSL without a client certificate: `User:ANONYMOUS`.
- SASL (either transport): `User:<authorization id>` of the completed mechanism.
- SSL with a client certificate: `User:` + its subject's distinguished name, as Java prints it
  (RFC 2253, most specific first: "CN=alice,OU=eng,O=acme"), mapped by `ssl.principal.mapping.rules`
  (Kafka's SslPrincipalMapper): a comma-separated list of `DEFAULT` (the name as it is) and
  `RULE:<pattern>/<replacement>/[L|U]` (if the pattern matches the whole name, the name with the
  pattern replaced, in lower or upper case); the first rule that applies wins.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from cryptography import x509
from cryptography.x509.oid import NameOID

ANONYMOUS = "User:ANONYMOUS"
DEFAULT_BUILDER = "org.apache.kafka.common.security.authenticator.DefaultKafkaPrincipalBuilder"


def sasl_principal(authorization_id: str) -> str:
    return f"User:{authorization_id}"


def ssl_principal(peer_certificate_der: bytes | None, mapper: SslPrincipalMapper) -> str:
    """The principal of a TLS client from its certificate (DER, as `getpeercert(binary_form=True)`
    gives it); ANONYMOUS without one. ValueError when no mapping rule applies."""
    if not peer_certificate_der:
        return ANONYMOUS
    return f"User:{mapper.name(distinguished_name(x509.load_der_x509_certificate(peer_certificate_der)))}"


# The attribute types Java's RFC 2253 form names; other types print as OID=#<DER hex>.
_KEYWORDS = {NameOID.COMMON_NAME: "CN", NameOID.COUNTRY_NAME: "C", NameOID.LOCALITY_NAME: "L",
             NameOID.STATE_OR_PROVINCE_NAME: "ST", NameOID.ORGANIZATION_NAME: "O",
             NameOID.ORGANIZATIONAL_UNIT_NAME: "OU", NameOID.STREET_ADDRESS: "STREET",
             NameOID.DOMAIN_COMPONENT: "DC", NameOID.USER_ID: "UID"}
_ESCAPED = set(',=+<>#;"\\')


def distinguished_name(cert: x509.Certificate) -> str:
    """The subject as Java's X500Principal.getName() gives it (RFC 2253)."""
    return ",".join("+".join(_ava(a) for a in rdn) for rdn in reversed(cert.subject.rdns))


def _ava(attr: x509.NameAttribute) -> str:
    keyword = _KEYWORDS.get(attr.oid)
    if keyword is None:
        return f"{attr.oid.dotted_string}=#{_der(attr).hex()}"
    value = attr.value if isinstance(attr.value, str) else attr.value.decode("latin-1")
    out = "".join("\\" + c if c in _ESCAPED else "\\00" if c == "\0" else c for c in value)
    if out.startswith(" "):
        out = "\\" + out
    if out.endswith(" ") and not out.endswith("\\ "):
        out = out[:-1] + "\\ "
    return f"{keyword}={out}"


def _der(attr: x509.NameAttribute) -> bytes:
    tag = attr._type.value  # the ASN.1 string type of the value
    value = attr.value
    if isinstance(value, bytes):
        content = value
    elif tag == 30:  # BMPString
        content = value.encode("utf-16-be")
    elif tag == 28:  # UniversalString
        content = value.encode("utf-32-be")
    else:
        content = value.encode("utf-8")
    n = len(content)
    length = bytes([n]) if n < 128 else bytes([0x80 | ((n.bit_length() + 7) // 8)]) + n.to_bytes(
        (n.bit_length() + 7) // 8, "big")
    return bytes([tag]) + length + content


_RULE = r"(DEFAULT)|RULE:((\\.|[^\\/])*)/((\\.|[^\\/])*)/([LU]?).*?|(.*?)"
_SPLITTER = re.compile(r"\s*(" + _RULE + r")\s*(,\s*|$)")
_PARSER = re.compile(_RULE)


class SslPrincipalMapper:
    def __init__(self, rules: str | None = "DEFAULT"):
        self.rules: list[tuple[re.Pattern, str, str] | None] = []  # None: DEFAULT
        text = "DEFAULT" if rules is None else rules
        for m in _SPLITTER.finditer(text.strip()):
            rule = m.group(1)
            parsed = _PARSER.match(rule)
            if parsed.end() != len(rule):
                raise ValueError(f"Invalid rule: `{rule}`, unmatched substring: `{rule[parsed.end():]}`")
            if parsed.group(1) is not None:
                self.rules.append(None)
            elif parsed.group(2) is not None:
                try:
                    pattern = re.compile(parsed.group(2))
                except re.error as e:
                    raise ValueError(f"Invalid rule: {rule}: {e}") from None
                self.rules.append((pattern, parsed.group(4), parsed.group(6)))

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> SslPrincipalMapper:
        return cls(config.get("ssl.principal.mapping.rules"))

    def name(self, dn: str) -> str:
        for rule in self.rules:
            if rule is None:
                return dn
            pattern, replacement, case = rule
            if pattern.fullmatch(dn):
                result = pattern.sub(lambda m, r=replacement: _expand(m, r), dn)
                return result.lower() if case == "L" else result.upper() if case == "U" else result
        raise ValueError(f"No rules apply to {dn}, rules {self}")

    def __str__(self) -> str:
        return "[" + ", ".join("DEFAULT" if r is None else f"RULE:{r[0].pattern}/{r[1]}" + (f"/{r[2]}" if r[2] else "")
                               for r in self.rules) + "]"


def _expand(m: re.Match, replacement: str) -> str:
    """Java's replacement syntax ($n groups, \\ escapes); a reference to a group the pattern does not
    have stays literal, as Kafka's mapper makes it."""
    out, i, groups = [], 0, m.re.groups
    while i < len(replacement):
        c = replacement[i]
        if c == "\\" and i + 1 < len(replacement):
            out.append(replacement[i + 1])
            i += 2
        elif c == "$" and i + 1 < len(replacement) and replacement[i + 1].isdigit():
            ref, j = int(replacement[i + 1]), i + 2
            if ref > groups:
                out.append("$")
                i += 1
                continue
            while j < len(replacement) and replacement[j].isdigit() and ref * 10 + int(replacement[j]) <= groups:
                ref, j = ref * 10 + int(replacement[j]), j + 1
            out.append(m.group(ref) or "")
            i = j
        else:
            out.append(c)
            i += 1
    return "".join(out)
