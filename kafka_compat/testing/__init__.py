"""Clusters for tests: `KafkaCluster` for an application's own tests (and the pytest fixtures
`kafka_cluster`, `kafka_bootstrap` and `kafka_topic` built on it), real broker processes for
this project's suites, and the deterministic Raft simulator."""

from __future__ import annotations

__all__ = ["KafkaCluster"]


def __getattr__(name: str):
    # Imported on first use: the pytest plugin loads this package in every pytest session of an
    # environment that has kafka-compat installed, and most of them never start a cluster.
    if name == "KafkaCluster":
        from kafka_compat.testing.cluster import KafkaCluster

        return KafkaCluster
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
