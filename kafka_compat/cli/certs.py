"""`kafka-compat certs dev DIR`: a development CA, a broker certificate and client certificates, as PEM
and PKCS12 files, with the `ssl.*` settings that use them. For laptops and tests, not production:
the CA's key is left beside its certificate.

    DIR/ca.pem, ca.key                 the CA (trust it: ssl.truststore.type=PEM, ssl.truststore.location)
    DIR/broker.pem, broker.p12         the broker's key and chain (ssl.keystore.type=PEM or PKCS12)
    DIR/<client>.pem, <client>.p12     each client's key and chain, for mutual TLS (CN=<client>)
    DIR/server-ssl.properties          a broker's ssl.* settings
    DIR/client-ssl.properties          a client's (security.protocol=SSL, --command-config)
"""

from __future__ import annotations

import datetime
import ipaddress
import secrets
from pathlib import Path

import typer
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

app = typer.Typer(help="TLS certificates.", no_args_is_help=True)

Key = ec.EllipticCurvePrivateKey


def new_key() -> Key:
    return ec.generate_private_key(ec.SECP256R1())


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "kafka-compat dev"),
                      x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def new_ca(common_name: str = "kafka-compat dev CA", days: int = 825) -> tuple[x509.Certificate, Key]:
    key = new_key()
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(_name(common_name)).issuer_name(_name(common_name))
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=days))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                         content_commitment=False, key_encipherment=False, data_encipherment=False,
                                         key_agreement=False, encipher_only=False, decipher_only=False),
                           critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256()))
    return cert, key


def issue(ca: tuple[x509.Certificate, Key], subject: x509.Name | str, hostnames: list[str] = (), *,
          server: bool = True, client: bool = True, days: int = 825,
          not_before: datetime.datetime | None = None) -> tuple[x509.Certificate, Key]:
    """A certificate signed by `ca` for `subject` (a common name or a full name), with the host names
    and addresses it may serve as."""
    ca_cert, ca_key = ca
    key = new_key()
    start = not_before or datetime.datetime.now(datetime.UTC) - datetime.timedelta(minutes=5)
    usages = [u for u, wanted in ((ExtendedKeyUsageOID.SERVER_AUTH, server), (ExtendedKeyUsageOID.CLIENT_AUTH, client))
              if wanted]
    builder = (x509.CertificateBuilder().subject_name(_name(subject) if isinstance(subject, str) else subject)
               .issuer_name(ca_cert.subject).public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(start).not_valid_after(start + datetime.timedelta(days=days))
               .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
               .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
               .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False))
    sans = []
    for h in hostnames:
        try:
            sans.append(x509.IPAddress(ipaddress.ip_address(h)))
        except ValueError:
            sans.append(x509.DNSName(h))
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    return builder.sign(ca_key, hashes.SHA256()), key


def pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def key_pem(key: Key, password: str | None = None) -> bytes:
    encryption = serialization.BestAvailableEncryption(password.encode()) if password else serialization.NoEncryption()
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption)


def p12(name: str, cert: x509.Certificate, key: Key, ca_cert: x509.Certificate, password: str) -> bytes:
    encryption = (serialization.PrivateFormat.PKCS12.encryption_builder().kdf_rounds(50000)
                  .key_cert_algorithm(pkcs12.PBES.PBESv2SHA256AndAES256CBC).hmac_hash(hashes.SHA256())
                  .build(password.encode()))
    return pkcs12.serialize_key_and_certificates(name.encode(), key, cert, [ca_cert], encryption)


def _write(path: Path, data: bytes, private: bool = False) -> Path:
    path.write_bytes(data)
    if private:
        path.chmod(0o600)
    return path


def dev_certs(directory: Path, hostnames: list[str], clients: list[str], password: str,
              days: int = 825) -> dict[str, Path]:
    """Write the CA, the broker's and the clients' files; the paths by name."""
    directory.mkdir(parents=True, exist_ok=True)
    ca = new_ca(days=days)
    ca_cert, ca_key = ca
    out = {"ca.pem": _write(directory / "ca.pem", pem(ca_cert)),
           "ca.key": _write(directory / "ca.key", key_pem(ca_key), private=True)}
    for name, subject, names, server in [("broker", "broker", hostnames, True)] + [(c, c, [], False) for c in clients]:
        cert, key = issue(ca, subject, names, server=server, days=days)
        out[f"{name}.pem"] = _write(directory / f"{name}.pem", key_pem(key) + pem(cert) + pem(ca_cert), private=True)
        out[f"{name}.p12"] = _write(directory / f"{name}.p12", p12(name, cert, key, ca_cert, password), private=True)
    d = directory.resolve()
    out["server-ssl.properties"] = _write(directory / "server-ssl.properties", (
        f"ssl.keystore.type=PKCS12\nssl.keystore.location={d / 'broker.p12'}\nssl.keystore.password={password}\n"
        f"ssl.truststore.type=PEM\nssl.truststore.location={d / 'ca.pem'}\nssl.client.auth=requested\n").encode(),
        private=True)
    first = clients[0] if clients else None
    out["client-ssl.properties"] = _write(directory / "client-ssl.properties", (
        f"security.protocol=SSL\nssl.truststore.type=PEM\nssl.truststore.location={d / 'ca.pem'}\n"
        + (f"ssl.keystore.type=PEM\nssl.keystore.location={d / f'{first}.pem'}\n" if first else "")).encode(),
        private=True)
    return out


@app.command()
def dev(
    directory: Path = typer.Argument(..., help="Where to write the files (created if missing)."),
    hostname: list[str] = typer.Option(["localhost", "127.0.0.1"], "--hostname",
                                       help="A host name or address the broker certificate is valid for (repeat)."),
    client: list[str] = typer.Option(["client"], "--client", help="A client certificate to make, by name (repeat)."),
    password: str = typer.Option(None, "--password", help="The PKCS12 password (default: a random one)."),
    days: int = typer.Option(825, "--days", min=1, help="Validity in days."),
    force: bool = typer.Option(False, "--force", help="Overwrite files of an earlier run."),
) -> None:
    """Write a development CA, a broker certificate and client certificates (PEM and PKCS12)."""
    if (directory / "ca.pem").exists() and not force:
        typer.echo(f"{directory / 'ca.pem'} exists; pass --force to replace the certificates", err=True)
        raise typer.Exit(1)
    password = password or secrets.token_urlsafe(12)
    files = dev_certs(directory, hostname, client, password, days)
    for name, path in files.items():
        typer.echo(f"wrote {path}" + (" (key, keep private)" if name.endswith((".key", ".p12")) else ""))
    typer.echo(f"PKCS12 password: {password}")
    typer.echo(f"broker settings: {files['server-ssl.properties']}; client settings: {files['client-ssl.properties']}")
