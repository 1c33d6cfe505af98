"""Kafka's security settings for one listener: `listener.name.<listener>.<key>` overrides `<key>`.

Values come as a server.properties file gives them (strings) or already parsed; the helpers here
read both. SASL settings that depend on the mechanism use the mechanism's lower-cased name as a
further prefix (`listener.name.sasl_ssl.scram-sha-256.sasl.jaas.config`), as Kafka's do.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

_LISTENER_KEY = re.compile(r"listener\.name\.([^.]*)\.(.*)")
# Kafka's ListenerMechanismConfigs: under a listener they carry the mechanism too
# (listener.name.sasl_ssl.plain.sasl.jaas.config)
_MECHANISM_KEYS = ("sasl.jaas.config", "sasl.login.callback.handler.class", "sasl.login.class",
                   "sasl.server.callback.handler.class", "connections.max.reauth.ms")


def for_listener(config: Mapping[str, Any], listener: str | None) -> dict[str, Any]:
    """The settings as the listener sees them: its prefixed keys replace the plain ones."""
    out = {k: v for k, v in config.items() if not k.startswith("listener.name.")}
    if listener:
        prefix = f"listener.name.{listener.lower()}."
        out.update({k[len(prefix):]: v for k, v in config.items() if k.startswith(prefix)})
    return out


def split_key(key: str) -> tuple[str | None, str]:
    """(listener or None, the key without its listener and mechanism prefixes)."""
    found = _LISTENER_KEY.fullmatch(key)
    if found is None:
        return None, key
    base = found[2]
    return found[1], next((k for k in _MECHANISM_KEYS if base.endswith("." + k)), base)


def for_mechanism(config: Mapping[str, Any], mechanism: str, key: str) -> Any:
    """A mechanism's setting: `<mechanism>.<key>` first, then `<key>`."""
    value = config.get(f"{mechanism.lower()}.{key}")
    return config.get(key) if value is None else value


def as_list(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [v.strip() for v in value.split(",") if v.strip()]
    return [str(v).strip() for v in value]


def as_str(value: Any) -> str | None:
    if value is None:
        return None
    value = str(value).strip()
    return value or None


def as_int(value: Any, default: int) -> int:
    return default if value is None or str(value).strip() == "" else int(str(value).strip())
