"""A real broker process with one listener of each security protocol, for the real-client tests.

    PLAINTEXT        the admin's way in (User:ANONYMOUS; a super user where ACLs are on)
    SSL              TLS, a client certificate requested (its DN is the principal)
    MTLS             TLS, a client certificate required
    SASL_PLAINTEXT   PLAIN (alice, bob from the JAAS config), SCRAM-SHA-256/512, OAUTHBEARER (unsecured)
    SASL_SSL         the same SASL over TLS

The StandardAuthorizer is on, with `allow.everyone.if.no.acl.found` (topics no ACL names are open
to all) and the PLAINTEXT listener's User:ANONYMOUS a super user: ACL tests name their resources.
"""

from __future__ import annotations

import hashlib
import json
import os

from kafka_compat.cli.certs import dev_certs
from kafka_compat.client.blocking import BrokerConnection
from kafka_compat.protocol import messages as m
from kafka_compat.security.sasl.scram import MECHANISMS
from kafka_compat.testing.broker_process import BrokerProcess, free_port

PASSWORD = "changeit"
USERS = {"alice": "alice-secret", "bob": "bob-secret"}
JAAS = ("org.apache.kafka.common.security.plain.PlainLoginModule required "
        + " ".join(f'user_{u}="{p}"' for u, p in USERS.items()) + ";")
LISTENERS = ("PLAINTEXT", "SSL", "MTLS", "SASL_PLAINTEXT", "SASL_SSL")


def make_certs(directory):
    return dev_certs(directory, ["localhost", "127.0.0.1"], ["alice", "mallory"], PASSWORD)


def running_broker(tmp_path_factory, certs: dict | None = None, name: str = "broker", **more: str):
    """A module fixture's body: a started SecureBroker (certificates made unless given), stopped
    after the module's tests. `yield from running_broker(tmp_path_factory, ...)`."""
    certs = certs or make_certs(tmp_path_factory.mktemp("certs"))
    broker = SecureBroker(tmp_path_factory.mktemp(name), certs, **more).start()
    try:
        yield broker
    finally:
        broker.stop()


class SecureBroker:
    def __init__(self, data_dir, certs: dict, **more: str):
        self.certs = certs
        self.ports = {name: free_port() for name in LISTENERS}
        listeners = ",".join(f"{n}://127.0.0.1:{p}" for n, p in self.ports.items())
        overrides = {
            "listeners": listeners, "advertised.listeners": listeners,
            "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,SSL:SSL,MTLS:SSL,SASL_PLAINTEXT:SASL_PLAINTEXT,"
                                              "SASL_SSL:SASL_SSL,CONTROLLER:PLAINTEXT",
            "ssl.keystore.type": "PKCS12", "ssl.keystore.location": str(certs["broker.p12"]),
            "ssl.keystore.password": PASSWORD, "ssl.truststore.type": "PEM",
            "ssl.truststore.location": str(certs["ca.pem"]), "ssl.client.auth": "requested",
            "listener.name.mtls.ssl.client.auth": "required",
            "sasl.enabled.mechanisms": "PLAIN,SCRAM-SHA-256,SCRAM-SHA-512,OAUTHBEARER",
            "listener.name.sasl_plaintext.plain.sasl.jaas.config": JAAS,
            "listener.name.sasl_ssl.plain.sasl.jaas.config": JAAS,
            "connection.failed.authentication.delay.ms": "50",
            "authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
            "allow.everyone.if.no.acl.found": "true", "super.users": "User:ANONYMOUS",
            **more,
        }
        self.process = BrokerProcess(data_dir, port=self.ports["PLAINTEXT"], overrides=overrides)

    def start(self) -> SecureBroker:
        self.process.start()
        self.add_scram_user("alice", USERS["alice"])
        return self

    def stop(self) -> None:
        self.process.stop()

    def failures(self) -> list[str]:
        """The reasons of the failed authentications the broker logged, oldest first."""
        out = []
        for line in self.process.log_path.read_text(errors="replace").splitlines():
            if '"failed_authentication"' in line:
                out.append(json.loads(line)["reason"])
        return out

    def bootstrap(self, listener: str) -> str:
        return f"127.0.0.1:{self.ports[listener]}"

    def add_scram_user(self, user: str, password: str, iterations: int = 4096) -> None:
        """SCRAM-SHA-256 and -512 credentials through AlterUserScramCredentials, as kafka-configs does."""
        A = m.AlterUserScramCredentialsRequest
        with BrokerConnection.to(self.bootstrap("PLAINTEXT")) as client:
            for mech in MECHANISMS.values():
                salt = os.urandom(16)
                salted = hashlib.pbkdf2_hmac(mech.hash, password.encode(), salt, iterations)
                response = client.request(A(upsertions=[A.ScramCredentialUpsertion(
                    name=user, mechanism=mech.type, iterations=iterations, salt=salt, salted_password=salted)]))
                assert [r.error_code for r in response.results] == [0], response
