"""Principals as Kafka's DefaultKafkaPrincipalBuilder and SslPrincipalMapper make them."""

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import NameOID

from kafka_compat.cli.certs import issue, new_ca
from kafka_compat.security.principal import (
    ANONYMOUS,
    SslPrincipalMapper,
    distinguished_name,
    sasl_principal,
    ssl_principal,
)

CA = new_ca()


def cert(*attrs):
    name = x509.Name([x509.NameAttribute(oid, value) for oid, value in attrs])
    return issue(CA, name)[0]


def der(c):
    return c.public_bytes(serialization.Encoding.DER)


def test_the_distinguished_name_reads_as_java_prints_it():
    c = cert((NameOID.COUNTRY_NAME, "US"), (NameOID.ORGANIZATION_NAME, "Acme, Inc."),
             (NameOID.ORGANIZATIONAL_UNIT_NAME, "eng"), (NameOID.COMMON_NAME, "alice"))
    assert distinguished_name(c) == "CN=alice,OU=eng,O=Acme\\, Inc.,C=US"


def test_attributes_java_does_not_name_print_as_oid_and_der():
    c = cert((NameOID.COMMON_NAME, "bob"), (NameOID.EMAIL_ADDRESS, "bob@x.io"))
    assert distinguished_name(c) == "1.2.840.113549.1.9.1=#1608626f6240782e696f,CN=bob"


def test_without_rules_the_principal_is_the_whole_name():
    c = cert((NameOID.ORGANIZATION_NAME, "acme"), (NameOID.COMMON_NAME, "alice"))
    assert ssl_principal(der(c), SslPrincipalMapper()) == "User:CN=alice,O=acme"
    assert ssl_principal(None, SslPrincipalMapper()) == ANONYMOUS


@pytest.mark.parametrize("rules, dn, name", [
    ("RULE:^CN=(.*?),OU=ServiceUsers.*$/$1/,DEFAULT", "CN=kafka1,OU=ServiceUsers,O=Unknown", "kafka1"),
    ("RULE:^CN=(.*?),OU=ServiceUsers.*$/$1/,DEFAULT", "CN=admin,OU=Admin,O=Unknown", "CN=admin,OU=Admin,O=Unknown"),
    ("RULE:^CN=(.*?),OU=(.*?),O=(.*?),L=(.*?),ST=(.*?),C=(.*?)$/$1@$2/L",
     "CN=Duke,OU=JavaSoft,O=Sun Microsystems,L=Santa Clara,ST=CA,C=US", "duke@javasoft"),
    ("RULE:^CN=(.*?),OU=(.*?)$/$1/U, DEFAULT", "CN=duke,OU=x", "DUKE"),
    ("RULE:^CN=([^,]*).*$/$1-$2/", "CN=a,O=b", "a-$2"),  # no second group: a literal $2
    ("RULE:^cn=(.*)$/$1/, RULE:^CN=(.*)$/user \\/ $1/", "CN=z", "user / z"),
])
def test_mapping_rules_rewrite_the_name_as_kafka_does(rules, dn, name):
    assert SslPrincipalMapper(rules).name(dn) == name


def test_a_name_no_rule_maps_is_an_error_and_a_malformed_rule_is_refused():
    with pytest.raises(ValueError, match="No rules apply to CN=x"):
        SslPrincipalMapper("RULE:^CN=y$/y/").name("CN=x")
    with pytest.raises(ValueError, match="Invalid rule"):
        SslPrincipalMapper("RULE:^CN=(.*)$/$1/X junk, nonsense")


def test_a_sasl_principal_is_the_authorization_id():
    assert sasl_principal("alice") == "User:alice"
