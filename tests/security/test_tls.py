"""TLS contexts from Kafka's ssl.* settings, tried in real handshakes: TlsStream on a listening
socket (as a listener uses it) against Python's ssl client, over loopback."""

import datetime
import socket
import ssl

import pytest
import trio
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from kafka_compat.cli.certs import dev_certs, issue, key_pem, new_ca, pem
from kafka_compat.security.principal import SslPrincipalMapper, ssl_principal
from kafka_compat.security.tls import TLS12_SUITES, TlsConfigError, client_context, server_context
from kafka_compat.tls_stream import TlsStream

PASSWORD = "changeit"


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    return dev_certs(tmp_path_factory.mktemp("certs"), ["localhost", "127.0.0.1"], ["alice"], PASSWORD)


def broker_pem(certs, **more):
    return {"ssl.keystore.type": "PEM", "ssl.keystore.location": str(certs["broker.pem"]), **more}


def trusting(certs, **more):
    return {"ssl.truststore.type": "PEM", "ssl.truststore.location": str(certs["ca.pem"]), **more}


def refused(client_outcome) -> bool:
    """The client failed, or (TLS 1.3: the server checks the client's certificate after the client's
    handshake is done) got the connection closed instead of data."""
    return isinstance(client_outcome, Exception) or client_outcome[0] != b"ok"


async def handshake(server_ctx, client_ctx, host="localhost"):
    """(server outcome, client outcome): the peer's certificate (DER) and cipher, or the exception."""
    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    port = listeners[0].socket.getsockname()[1]
    outcome = {}

    async def serve():
        stream = await listeners[0].accept()
        tls = TlsStream(stream, server_ctx, server_side=True)
        try:
            await tls.do_handshake()
            outcome["server"] = (tls.getpeercert(binary_form=True), tls.cipher()[0])
            await tls.send_all(b"ok")
        except (trio.BrokenResourceError, ssl.SSLError) as e:
            outcome["server"] = e
        finally:
            await stream.aclose()

    def connect():
        with socket.create_connection(("127.0.0.1", port)) as raw:
            try:
                with client_ctx.wrap_socket(raw, server_hostname=host) as s:
                    return s.recv(2), s.version()
            except (ssl.SSLError, OSError) as e:
                return e

    async with trio.open_nursery() as nursery:
        nursery.start_soon(serve)
        outcome["client"] = await trio.to_thread.run_sync(connect)
    await listeners[0].aclose()
    return outcome["server"], outcome["client"]


async def test_a_pem_keystore_serves_a_client_that_trusts_the_ca(certs):
    server, client = await handshake(server_context(broker_pem(certs)), client_context(trusting(certs)))
    assert client[0] == b"ok" and client[1] == "TLSv1.3" and server[0] is None


async def test_a_pkcs12_keystore_serves_and_a_wrong_password_is_named(certs):
    config = {"ssl.keystore.type": "PKCS12", "ssl.keystore.location": str(certs["broker.p12"]),
              "ssl.keystore.password": PASSWORD}
    _, client = await handshake(server_context(config), client_context(trusting(certs)))
    assert client[0] == b"ok"
    with pytest.raises(TlsConfigError, match="ssl.keystore.password"):
        server_context(config | {"ssl.keystore.password": "wrong"})
    # Kafka's default type (JKS) reads a PKCS12 file as keytool writes them since Java 9
    _, client = await handshake(server_context(config | {"ssl.keystore.type": "JKS"}), client_context(trusting(certs)))
    assert client[0] == b"ok"


async def test_inline_pem_with_an_encrypted_key_and_a_pkcs12_truststore(certs, tmp_path):
    ca = new_ca()
    cert, key = issue(ca, "broker", ["localhost"])
    config = {"ssl.keystore.type": "PEM", "ssl.keystore.certificate.chain": (pem(cert) + pem(ca[0])).decode(),
              "ssl.keystore.key": key_pem(key, "s3cret").decode(), "ssl.key.password": "s3cret"}
    trust = {"ssl.truststore.type": "PEM", "ssl.truststore.certificates": pem(ca[0]).decode()}
    _, client = await handshake(server_context(config), client_context(trust))
    assert client[0] == b"ok"
    with pytest.raises(TlsConfigError, match="ssl.key.password"):
        server_context(config | {"ssl.key.password": "nope"})
    p12 = {"ssl.truststore.type": "PKCS12", "ssl.truststore.location": str(certs["alice.p12"]),
           "ssl.truststore.password": PASSWORD}
    _, client = await handshake(server_context(broker_pem(certs)), client_context(p12))
    assert client[0] == b"ok"  # alice.p12 holds the dev CA that signed the broker


async def test_required_client_auth_names_the_client_by_its_certificate(certs):
    server_ctx = server_context(trusting(certs, **broker_pem(certs), **{"ssl.client.auth": "required"}))
    client_ctx = client_context(trusting(certs, **{"ssl.keystore.type": "PEM",
                                                   "ssl.keystore.location": str(certs["alice.pem"])}))
    (peer, _), (data, _) = await handshake(server_ctx, client_ctx)
    assert data == b"ok"
    assert ssl_principal(peer, SslPrincipalMapper()) == "User:CN=alice,O=kafka-compat dev"
    assert ssl_principal(peer, SslPrincipalMapper("RULE:^CN=([^,]*),.*$/$1/")) == "User:alice"
    server, client = await handshake(server_ctx, client_context(trusting(certs)))
    assert isinstance(server, Exception) and refused(client)


async def test_requested_client_auth_lets_a_client_without_a_certificate_in_as_anonymous(certs):
    server_ctx = server_context(trusting(certs, **broker_pem(certs), **{"ssl.client.auth": "requested"}))
    (peer, _), (data, _) = await handshake(server_ctx, client_context(trusting(certs)))
    assert data == b"ok" and ssl_principal(peer, SslPrincipalMapper()) == "User:ANONYMOUS"


async def test_an_expired_or_untrusted_client_certificate_is_refused(certs, tmp_path):
    server_ctx = server_context(trusting(certs, **broker_pem(certs), **{"ssl.client.auth": "required"}))
    ca = (x509.load_pem_x509_certificate(certs["ca.pem"].read_bytes()),
          serialization.load_pem_private_key(certs["ca.key"].read_bytes(), None))
    expired = issue(ca, "late", server=False, days=1,
                    not_before=datetime.datetime.now(datetime.UTC) - datetime.timedelta(days=3))
    stranger = issue(new_ca(), "stranger", server=False)
    for cert, key in (expired, stranger):
        path = tmp_path / "client.pem"
        path.write_bytes(key_pem(key) + pem(cert))
        client_ctx = client_context(trusting(certs, **{"ssl.keystore.type": "PEM", "ssl.keystore.location": str(path)}))
        server, client = await handshake(server_ctx, client_ctx)
        assert isinstance(server, ssl.SSLError | trio.BrokenResourceError) and refused(client)


async def test_tls_1_1_and_a_host_name_the_certificate_does_not_name_are_refused(certs):
    server_ctx = server_context(broker_pem(certs))
    old = client_context(trusting(certs, **{"ssl.enabled.protocols": "TLSv1,TLSv1.1"}))
    server, client = await handshake(server_ctx, old)
    assert isinstance(client, ssl.SSLError)
    _, client = await handshake(server_ctx, client_context(trusting(certs)), host="broker.example")
    assert isinstance(client, ssl.SSLCertVerificationError)
    lenient = client_context(trusting(certs, **{"ssl.endpoint.identification.algorithm": ""}))
    _, client = await handshake(server_ctx, lenient, host="broker.example")
    assert client[0] == b"ok"


async def test_enabled_protocols_and_cipher_suites_are_enforced(certs):
    server_ctx = server_context(broker_pem(certs, **{"ssl.enabled.protocols": "TLSv1.2",
                                                     "ssl.cipher.suites": "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384"}))
    (_, cipher), (data, version) = await handshake(server_ctx, client_context(trusting(certs)))
    assert (data, version, cipher) == (b"ok", "TLSv1.2", "ECDHE-ECDSA-AES256-GCM-SHA384")
    only13 = server_context(broker_pem(certs, **{"ssl.enabled.protocols": "TLSv1.3"}))
    _, client = await handshake(only13, client_context(trusting(certs, **{"ssl.enabled.protocols": "TLSv1.2"})))
    assert isinstance(client, ssl.SSLError)


def test_every_tls12_suite_name_maps_to_a_cipher_openssl_knows():
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.set_ciphers("ALL:@SECLEVEL=0")
    known = {c["name"] for c in ctx.get_ciphers()}
    assert set(TLS12_SUITES.values()) <= known


def test_settings_that_cannot_work_are_named(certs, tmp_path):
    with pytest.raises(TlsConfigError, match="ssl.keystore.location"):
        server_context({})
    jks = tmp_path / "k.jks"
    jks.write_bytes(b"\xfe\xed\xfe\xed" + bytes(40))
    with pytest.raises(TlsConfigError, match="JKS keystores cannot be read"):
        server_context({"ssl.keystore.location": str(jks), "ssl.keystore.password": "x"})
    with pytest.raises(TlsConfigError, match="ssl.enabled.protocols: SSLv3"):
        server_context(broker_pem(certs, **{"ssl.enabled.protocols": "SSLv3"}))
    with pytest.raises(TlsConfigError, match="unknown cipher suite TLS_NOPE"):
        server_context(broker_pem(certs, **{"ssl.cipher.suites": "TLS_NOPE"}))
    with pytest.raises(TlsConfigError, match="ssl.client.auth"):
        server_context(broker_pem(certs, **{"ssl.client.auth": "always"}))
