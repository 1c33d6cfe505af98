"""The client side of PLAIN and SCRAM-SHA-256/512, sans-I/O: what a node (inter-broker and
controller connections) and the CLI send when they authenticate.

    exchange = client_exchange("SCRAM-SHA-256", "admin", "secret")
    token = next(exchange)                  # the first token to send
    token = exchange.send(server_token)     # each next one; StopIteration once the exchange is done

A server answer that does not fit (a nonce the client did not start, a wrong server signature)
raises SaslError.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from collections.abc import Generator

from kafka_compat.security.sasl import SaslError
from kafka_compat.security.sasl.scram import MECHANISMS, salted_password, sasl_name

CLIENT_MECHANISMS = ("PLAIN", *MECHANISMS)


def client_exchange(mechanism: str, username: str, password: str) -> Generator[bytes, bytes, None]:
    if mechanism == "PLAIN":
        yield f"\0{username}\0{password}".encode()
        return
    mech = MECHANISMS.get(mechanism)
    if mech is None:
        raise SaslError(f"SASL mechanism {mechanism} is not supported by this client "
                        f"(one of {', '.join(CLIENT_MECHANISMS)})")
    nonce = secrets.token_urlsafe(24)
    bare = f"n={sasl_name(username)},r={nonce}"
    server_first = (yield f"n,,{bare}".encode()).decode()
    try:
        fields = dict(part.split("=", 1) for part in server_first.split(","))
        server_nonce, salt, iterations = fields["r"], base64.b64decode(fields["s"]), int(fields["i"])
    except (KeyError, ValueError) as e:
        raise SaslError(f"Invalid SCRAM server first message: {server_first!r}") from e
    if not server_nonce.startswith(nonce) or len(server_nonce) == len(nonce):
        raise SaslError("Invalid SCRAM server nonce")
    salted = salted_password(mech, password, salt, iterations)
    client_key = hmac.digest(salted, b"Client Key", mech.hash)
    stored_key = hashlib.new(mech.hash, client_key).digest()
    without_proof = f"c=biws,r={server_nonce}"
    auth = f"{bare},{server_first},{without_proof}".encode()
    proof = bytes(a ^ b for a, b in zip(client_key, hmac.digest(stored_key, auth, mech.hash), strict=True))
    server_final = (yield f"{without_proof},p={base64.b64encode(proof).decode()}".encode()).decode()
    expected = base64.b64encode(hmac.digest(hmac.digest(salted, b"Server Key", mech.hash), auth, mech.hash)).decode()
    if server_final.startswith("e="):
        raise SaslError(f"SCRAM authentication failed: {server_final[2:]}")
    if not hmac.compare_digest(server_final, f"v={expected}"):
        raise SaslError("Invalid SCRAM server signature")
