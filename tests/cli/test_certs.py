"""`kafka-compat certs dev DIR` through the installed executable: the files it writes make a TLS
listener (with client authentication) that its client files get through."""

from __future__ import annotations

import socket
import ssl
import subprocess
import threading

from kafka_compat.security.config import for_listener
from kafka_compat.security.principal import SslPrincipalMapper, ssl_principal
from kafka_compat.security.tls import client_context, server_context
from kafka_compat.testing.broker_process import CLI


def properties(path) -> dict[str, str]:
    return dict(line.split("=", 1) for line in path.read_text().splitlines() if "=" in line)


def test_dev_certificates_make_a_mutual_tls_connection(tmp_path):
    out = subprocess.run([CLI, "certs", "dev", str(tmp_path / "c"), "--client", "alice", "--password", "pw"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "PKCS12 password: pw" in out.stdout
    server = properties(tmp_path / "c" / "server-ssl.properties")
    client = properties(tmp_path / "c" / "client-ssl.properties")
    assert server["ssl.keystore.type"] == "PKCS12" and client["security.protocol"] == "SSL"
    server_ctx = server_context(for_listener({**server, "ssl.client.auth": "required"}, "SSL"))
    client_ctx = client_context(client)

    listener = socket.create_server(("127.0.0.1", 0))
    seen = {}

    def serve():
        conn, _ = listener.accept()
        with server_ctx.wrap_socket(conn, server_side=True) as tls:
            seen["principal"] = ssl_principal(tls.getpeercert(binary_form=True), SslPrincipalMapper())
            tls.sendall(b"hi")

    t = threading.Thread(target=serve)
    t.start()
    with socket.create_connection(listener.getsockname()) as raw, \
            client_ctx.wrap_socket(raw, server_hostname="localhost") as tls:
        assert tls.recv(2) == b"hi"
    t.join(10)
    listener.close()
    assert seen["principal"] == "User:CN=alice,O=kafka-compat dev"


def test_an_earlier_run_is_kept_unless_forced(tmp_path):
    first = subprocess.run([CLI, "certs", "dev", str(tmp_path)], capture_output=True, text=True, timeout=60)
    assert first.returncode == 0, first.stderr
    ca = (tmp_path / "ca.pem").read_bytes()
    again = subprocess.run([CLI, "certs", "dev", str(tmp_path)], capture_output=True, text=True, timeout=60)
    assert again.returncode == 1 and "--force" in again.stderr and (tmp_path / "ca.pem").read_bytes() == ca
    forced = subprocess.run([CLI, "certs", "dev", str(tmp_path), "--force"], capture_output=True, text=True,
                            timeout=60)
    assert forced.returncode == 0 and (tmp_path / "ca.pem").read_bytes() != ca
    assert ssl.PEM_cert_to_DER_cert((tmp_path / "ca.pem").read_text())
