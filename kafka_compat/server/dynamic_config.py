"""Which broker configs may change at run time, and how (Kafka's DynamicBrokerConfig, KRaft mode).

IncrementalAlterConfigs (and AlterConfigs) on a broker resource is checked by the broker that
receives it, as Kafka's ConfigAdminManager does, before it goes to the controller:

- the keystore and truststore (`SslConfigs.RECONFIGURABLE_CONFIGS`) change only per listener,
  `listener.name.<l>.ssl.keystore.location` and the like: the plain keys are refused. New TLS
  connections take the change at once; a keystore or truststore that cannot be loaded is refused;
- any other `listener.name.<l>.` setting of an existing listener (its `ssl.client.auth`, enabled
  protocols, ciphers, SASL mechanisms and JAAS config, ...) is refused: Kafka changes those only with
  a restart (and a KRaft broker's listeners themselves never change at run time);
- per-broker settings (the security ones among them) are refused at the cluster-wide default level.

Kafka answers each refusal INVALID_REQUEST with the message checked here.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from kafka_compat.security.config import for_listener, split_key
from kafka_compat.security.tls import server_context

# SslConfigs.RECONFIGURABLE_CONFIGS
RECONFIGURABLE_SSL = frozenset({
    "ssl.keystore.type", "ssl.keystore.location", "ssl.keystore.password", "ssl.key.password",
    "ssl.truststore.type", "ssl.truststore.location", "ssl.truststore.password", "ssl.keystore.certificate.chain",
    "ssl.keystore.key", "ssl.truststore.certificates"})
# what a listener may change besides (SocketServer's and the acceptor's ListenerReconfigurableConfigs), and
# may at the cluster-wide level (DynamicBrokerConfig.ClusterLevelListenerConfigs)
LISTENER_RECONFIGURABLE = frozenset({"max.connections", "max.connection.creation.rate", "num.network.threads"})
# DynamicListenerConfig.ReconfigurableConfigs (per broker only), those this broker knows
PER_BROKER = frozenset({
    "ssl.client.auth", "ssl.enabled.protocols", "ssl.protocol", "ssl.cipher.suites",
    "ssl.endpoint.identification.algorithm", "sasl.enabled.mechanisms", "sasl.mechanism.inter.broker.protocol",
    "sasl.jaas.config", "listeners", "advertised.listeners", "listener.security.protocol.map"})


def _invalid(reason: str) -> str:
    # Kafka wraps a failed reconfiguration in ConfigException(name, value): this is its message
    return (f"Invalid value org.apache.kafka.common.config.ConfigException: {reason} "
            "for configuration Invalid dynamic configuration")


def key_problem(key: str, per_broker: bool, listeners: Collection[str]) -> str | None:
    """Why `key` may not be altered on a broker resource (per broker, or the cluster-wide default),
    given the broker's listener names; None if it may (its value is checked elsewhere)."""
    listener, base = split_key(key)
    if listener is None:
        if base in RECONFIGURABLE_SSL:
            return ("These security configs can be dynamically updated only per-listener using the listener "
                    f"prefix: Set({key})")
        if not per_broker and base in PER_BROKER:
            return f"Cannot update these configs at default cluster level, broker id must be specified: Set({key})"
        return None
    if not per_broker and base not in LISTENER_RECONFIGURABLE:
        return f"Cannot update these configs at default cluster level, broker id must be specified: Set({key})"
    if listener.upper() in listeners and base not in RECONFIGURABLE_SSL | LISTENER_RECONFIGURABLE:
        return _invalid(f"Configs cannot be updated dynamically for existing listener "
                        f"ListenerName({listener.upper()}), restart broker or create a new listener for update")
    return None


def tls_problem(config: Mapping[str, Any], tls_listeners: Collection[str]) -> str | None:
    """Why the keystores and truststores `config` names cannot serve (Kafka's SslFactory validation
    of a dynamic update), checked for each TLS listener; None when they all load."""
    for name in tls_listeners:
        try:
            server_context(for_listener(config, name))
        except ValueError as e:
            return _invalid(f"Validation of dynamic config update of SSLFactory failed: {e}")
    return None


def reconfigurable_tls(configs: Mapping[str, str]) -> dict[str, str]:
    """The dynamic settings among `configs` that new TLS connections take at once."""
    return {k: v for k, v in configs.items() if split_key(k)[1] in RECONFIGURABLE_SSL}
