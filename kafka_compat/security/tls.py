"""TLS contexts from Kafka's `ssl.*` settings: a pure function from the settings to an `ssl.SSLContext`.

    server_context(for_listener(config, "SSL"))    a listener's (TlsStream(..., server_side=True))
    client_context(config)                         a client's (inter-broker, tools)

Keystores: `ssl.keystore.type` PEM (a `ssl.keystore.location` file holding the private key and the
certificate chain, or the inline `ssl.keystore.certificate.chain` and `ssl.keystore.key`) or
PKCS12 (`ssl.keystore.location`, `ssl.keystore.password`). Kafka's default type, JKS, is read
when the file is in fact PKCS12 (as keytool writes them since Java 9); a true JKS file is refused
with a way out. `ssl.key.password` decrypts an encrypted key. Truststores alike (`ssl.truststore.*`,
PEM inline as `ssl.truststore.certificates`); without one, the system's CAs. `ssl.client.auth`
none / requested / required; `ssl.enabled.protocols` (TLSv1.2,TLSv1.3 by default);
`ssl.cipher.suites` by their IANA names (TLS 1.2 suites are enforced; TLS 1.3 suites cannot be
narrowed through Python's ssl module, so a list of TLS 1.3 suites only means TLS 1.3 only);
`ssl.endpoint.identification.algorithm` (https by default) for clients.

The private key reaches OpenSSL through a private temporary file that holds it encrypted under a
random passphrase and is removed at once: Python's ssl module loads keys only from files.
"""

from __future__ import annotations

import os
import secrets
import ssl
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import pkcs12

from kafka_compat.security.config import as_list, as_str

DEFAULT_PROTOCOLS = ("TLSv1.2", "TLSv1.3")
_VERSIONS = {"TLSv1": ssl.TLSVersion.TLSv1, "TLSv1.1": ssl.TLSVersion.TLSv1_1, "TLSv1.2": ssl.TLSVersion.TLSv1_2,
             "TLSv1.3": ssl.TLSVersion.TLSv1_3}
CLIENT_AUTH = {"none": ssl.CERT_NONE, "requested": ssl.CERT_OPTIONAL, "required": ssl.CERT_REQUIRED}
JKS_MAGIC = b"\xfe\xed\xfe\xed"

# IANA (and JSSE) cipher suite names -> OpenSSL's, for the TLS 1.2 suites OpenSSL offers.
TLS12_SUITES = {
    f"TLS_{kx}_WITH_{cipher}": f"{ossl_kx}{ossl_cipher}"
    for kx, ossl_kx in (("ECDHE_ECDSA", "ECDHE-ECDSA-"), ("ECDHE_RSA", "ECDHE-RSA-"), ("DHE_RSA", "DHE-RSA-"),
                        ("RSA", ""))
    for cipher, ossl_cipher in (("AES_128_GCM_SHA256", "AES128-GCM-SHA256"),
                                ("AES_256_GCM_SHA384", "AES256-GCM-SHA384"), ("AES_128_CBC_SHA256", "AES128-SHA256"),
                                ("AES_128_CBC_SHA", "AES128-SHA"), ("AES_256_CBC_SHA", "AES256-SHA"))
}
TLS12_SUITES.update({
    "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA384": "ECDHE-ECDSA-AES256-SHA384",
    "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA384": "ECDHE-RSA-AES256-SHA384",
    "TLS_DHE_RSA_WITH_AES_256_CBC_SHA256": "DHE-RSA-AES256-SHA256",
    "TLS_RSA_WITH_AES_256_CBC_SHA256": "AES256-SHA256",
    "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256": "ECDHE-ECDSA-CHACHA20-POLY1305",
    "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256": "ECDHE-RSA-CHACHA20-POLY1305",
    "TLS_DHE_RSA_WITH_CHACHA20_POLY1305_SHA256": "DHE-RSA-CHACHA20-POLY1305",
})
TLS13_SUITES = frozenset({"TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384", "TLS_CHACHA20_POLY1305_SHA256",
                          "TLS_AES_128_CCM_SHA256", "TLS_AES_128_CCM_8_SHA256"})


class TlsConfigError(ValueError):
    """A TLS setting that cannot be used, naming the key."""


def server_context(config: Mapping[str, Any]) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    _protocols_and_ciphers(ctx, config)
    chain, key = keystore(config)
    if not chain:
        raise TlsConfigError("ssl.keystore.location (or ssl.keystore.certificate.chain and ssl.keystore.key) must be "
                             "set on an SSL listener")
    _load_chain(ctx, chain, key)
    auth = (as_str(config.get("ssl.client.auth")) or "none").lower()
    if auth not in CLIENT_AUTH:
        raise TlsConfigError(f"ssl.client.auth: {auth} is not one of none, requested, required")
    ctx.verify_mode = CLIENT_AUTH[auth]
    if auth != "none":
        _trust(ctx, config)
    return ctx


def client_context(config: Mapping[str, Any]) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    _protocols_and_ciphers(ctx, config)
    algorithm = as_str(config.get("ssl.endpoint.identification.algorithm", "https"))
    ctx.check_hostname = (algorithm or "").lower() == "https"
    ctx.verify_mode = ssl.CERT_REQUIRED
    _trust(ctx, config)
    chain, key = keystore(config)
    if chain:
        _load_chain(ctx, chain, key)
    return ctx


def _protocols_and_ciphers(ctx: ssl.SSLContext, config: Mapping[str, Any]) -> None:
    protocols = as_list(config.get("ssl.enabled.protocols")) or list(DEFAULT_PROTOCOLS)
    unknown = [p for p in protocols if p not in _VERSIONS]
    if unknown:
        raise TlsConfigError(f"ssl.enabled.protocols: {', '.join(unknown)} not supported "
                             f"(one of {', '.join(_VERSIONS)})")
    versions = sorted(_VERSIONS[p] for p in protocols)
    ctx.minimum_version, ctx.maximum_version = versions[0], versions[-1]
    old = versions[0] < ssl.TLSVersion.TLSv1_2
    suites = as_list(config.get("ssl.cipher.suites"))
    tls12 = []
    for s in suites:
        if s in TLS13_SUITES:
            continue
        name = TLS12_SUITES.get(s, s if "-" in s else None)
        if name is None:
            raise TlsConfigError(f"ssl.cipher.suites: unknown cipher suite {s}")
        tls12.append(name)
    if suites and not tls12:  # TLS 1.3 suites only
        ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    elif tls12 or old:
        try:  # TLS 1.0 and 1.1 need OpenSSL's lowest security level when someone enables them on purpose
            ctx.set_ciphers(":".join(tls12 or ["DEFAULT"]) + (":@SECLEVEL=0" if old else ""))
        except ssl.SSLError:
            raise TlsConfigError(f"ssl.cipher.suites: none of {', '.join(suites)} is available") from None


def _read(config: Mapping[str, Any], key: str) -> bytes:
    path = as_str(config.get(key))
    try:
        return Path(path).read_bytes()
    except OSError as e:
        raise TlsConfigError(f"{key}: cannot read {path}: {e.strerror}") from None


def _password(config: Mapping[str, Any], key: str) -> bytes | None:
    value = config.get(key)
    return None if value is None else str(value).encode()


def keystore(config: Mapping[str, Any]) -> tuple[list[x509.Certificate], Any]:
    """(certificate chain, private key) from the keystore settings; ([], None) when there are none."""
    kind = (as_str(config.get("ssl.keystore.type")) or "JKS").upper()
    key_password = _password(config, "ssl.key.password")
    inline_chain, inline_key = as_str(config.get("ssl.keystore.certificate.chain")), as_str(config.get(
        "ssl.keystore.key"))
    if inline_chain or inline_key:
        if kind != "PEM":
            raise TlsConfigError("ssl.keystore.certificate.chain and ssl.keystore.key need ssl.keystore.type=PEM")
        if not (inline_chain and inline_key):
            raise TlsConfigError("ssl.keystore.certificate.chain and ssl.keystore.key must be set together")
        return _pem_certs(inline_chain.encode(), "ssl.keystore.certificate.chain"), _pem_key(
            inline_key.encode(), key_password, "ssl.keystore.key")
    if not as_str(config.get("ssl.keystore.location")):
        return [], None
    data = _read(config, "ssl.keystore.location")
    if kind == "PEM":
        return _pem_certs(data, "ssl.keystore.location"), _pem_key(data, key_password, "ssl.keystore.location")
    key, cert, extra = _pkcs12(data, _password(config, "ssl.keystore.password"), "ssl.keystore")
    if key is None or cert is None:
        raise TlsConfigError("ssl.keystore.location: the keystore holds no private key with its certificate")
    return [cert, *extra], key


def truststore_pem(config: Mapping[str, Any]) -> str | None:
    """The trusted certificates as PEM, or None when no truststore is configured."""
    kind = (as_str(config.get("ssl.truststore.type")) or "JKS").upper()
    inline = as_str(config.get("ssl.truststore.certificates"))
    if inline:
        if kind != "PEM":
            raise TlsConfigError("ssl.truststore.certificates needs ssl.truststore.type=PEM")
        certs = _pem_certs(inline.encode(), "ssl.truststore.certificates")
    elif as_str(config.get("ssl.truststore.location")):
        data = _read(config, "ssl.truststore.location")
        if kind == "PEM":
            certs = _pem_certs(data, "ssl.truststore.location")
        else:
            _key, cert, extra = _pkcs12(data, _password(config, "ssl.truststore.password"), "ssl.truststore")
            certs = ([cert] if cert else []) + extra
    else:
        return None
    if not certs:
        raise TlsConfigError("the truststore holds no certificate")
    return "".join(c.public_bytes(serialization.Encoding.PEM).decode() for c in certs)


def _trust(ctx: ssl.SSLContext, config: Mapping[str, Any]) -> None:
    pem = truststore_pem(config)
    if pem is None:
        ctx.load_default_certs(ssl.Purpose.CLIENT_AUTH if ctx.protocol == ssl.PROTOCOL_TLS_SERVER
                               else ssl.Purpose.SERVER_AUTH)
    else:
        ctx.load_verify_locations(cadata=pem)


def _pem_certs(data: bytes, key: str) -> list[x509.Certificate]:
    try:
        return x509.load_pem_x509_certificates(data) if b"-----BEGIN CERTIFICATE-----" in data else []
    except ValueError as e:
        raise TlsConfigError(f"{key}: not a PEM certificate chain ({e})") from None


def _pem_key(data: bytes, password: bytes | None, key: str):
    start = data.find(b"-----BEGIN ")
    while start >= 0 and b"PRIVATE KEY-----" not in data[start:data.find(b"\n", start)]:
        start = data.find(b"-----BEGIN ", start + 1)
    if start < 0:
        raise TlsConfigError(f"{key}: no private key in it")
    try:
        return serialization.load_pem_private_key(data[start:], password or None)
    except (ValueError, TypeError) as e:
        raise TlsConfigError(f"{key}: cannot read the private key (is ssl.key.password right?): {e}") from None


def _pkcs12(data: bytes, password: bytes | None, prefix: str):
    if data[:4] == JKS_MAGIC:
        raise TlsConfigError(f"{prefix}.location: JKS keystores cannot be read; convert it with `keytool "
                             f"-importkeystore -deststoretype PKCS12` or use {prefix}.type=PEM")
    try:
        return pkcs12.load_key_and_certificates(data, password)
    except (ValueError, TypeError) as e:
        raise TlsConfigError(f"{prefix}.location: cannot read it as PKCS12 (is {prefix}.password right?): "
                             f"{e}") from None


def _load_chain(ctx: ssl.SSLContext, chain: list[x509.Certificate], key) -> None:
    passphrase = secrets.token_bytes(32)
    with tempfile.TemporaryDirectory(prefix="kafka-compat-tls-") as tmp:
        cert_path, key_path = os.path.join(tmp, "chain.pem"), os.path.join(tmp, "key.pem")
        with open(cert_path, "wb") as f:
            f.write(b"".join(c.public_bytes(serialization.Encoding.PEM) for c in chain))
        fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                      serialization.BestAvailableEncryption(passphrase)))
        try:
            ctx.load_cert_chain(cert_path, key_path, password=passphrase)
        except ssl.SSLError as e:
            raise TlsConfigError(f"the keystore's certificate and private key do not go together: {e}") from None
