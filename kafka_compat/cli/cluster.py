"""`kafka-compat cluster info`: what a cluster says about itself (DescribeCluster where the
brokers serve it, else Metadata). `kafka-compat cluster status`: its health at a glance, as rpk's
`cluster health`. `kafka-compat cluster up`: a local multi-node cluster of combined
broker+controller processes on 127.0.0.1, for development."""

from __future__ import annotations

import secrets
import signal
import socket
import time
from dataclasses import replace
from pathlib import Path

import typer

from kafka_compat.cli.admin import BROKERS, COMMAND_CONFIG, connect
from kafka_compat.cli.group import lags
from kafka_compat.cli.output import OUTPUT, Format, Section, progress, show
from kafka_compat.cli.quorum import replicas as quorum_replicas
from kafka_compat.client import BrokerUnreachable, Cluster, UnsupportedApi, error_code
from kafka_compat.protocol import messages as m
from kafka_compat.protocol.errors import KafkaError
from kafka_compat.raft import wire

app = typer.Typer(help="Inspect the cluster, or run one locally.", no_args_is_help=True)

# A voter that has not fetched from the leader for this long is reported: Kafka's default
# controller.quorum.fetch.timeout.ms, after which a follower itself gives up on its leader.
VOTER_STALE_MS = 2_000


@app.command()
def info(brokers: str = BROKERS, command_config: str = COMMAND_CONFIG, output: Format = OUTPUT) -> None:
    """Cluster id, controller, brokers (endpoints and racks) and topic count."""
    with connect(brokers, command_config) as cluster:
        meta = cluster.metadata(None)
        cluster_id, controller, nodes = _describe_cluster(cluster, meta)
    internal = sum(t.internal for t in meta.topics.values())
    topics = len(meta.topics) - internal
    if output == Format.json:
        show(output, Section("cluster", ["id", "controller", "brokers", "topics", "internal-topics"],
                             [[cluster_id, controller, len(nodes), topics, internal]], one=True),
             Section("brokers", ["id", "host", "port", "rack", "controller"],
                     [[i, host, port, rack, i == controller] for i, host, port, rack in sorted(nodes)]))
        return
    show(output, Section("cluster", ["id", "controller", "brokers", "topics"],
                         [[cluster_id, controller, len(nodes), f"{topics} (+{internal} internal)"]]),
         Section("brokers", ["id", "host", "port", "rack"],  # the controller marked with a *
                 [[f"{i}*" if i == controller else i, host, port, rack] for i, host, port, rack in sorted(nodes)]))


def _describe_cluster(cluster: Cluster, meta) -> tuple[str | None, int, list[tuple[int, str, int, str | None]]]:
    """(cluster id, controller id, [(broker id, host, port, rack)]): DescribeCluster where served."""
    nodes = [(n.node_id, n.host, n.port, n.rack) for n in meta.nodes.values()]
    if not cluster.supports(m.DescribeClusterRequest):
        return meta.cluster_id, meta.controller_id, nodes
    resp = cluster.request(m.DescribeClusterRequest())
    if resp.error_code:
        raise KafkaError(error_code(resp.error_code), resp.error_message or "DescribeCluster")
    return resp.cluster_id, resp.controller_id, [(b.broker_id, b.host, b.port, b.rack) for b in resp.brokers]


@app.command()
def status(
    brokers: str = BROKERS, command_config: str = COMMAND_CONFIG,
    output: Format = OUTPUT,
    groups: bool = typer.Option(True, "--groups/--no-groups", help="Measure every group's lag (one OffsetFetch "
                                "per group and ListOffsets per topic)."),
) -> None:
    """The cluster's health at a glance: brokers up and down, the controller, the metadata quorum,
    offline and under-replicated partitions, and groups that lag. Exit code 1 if it is not healthy."""
    problems: list[str] = []
    with connect(brokers, command_config) as cluster:
        meta = cluster.metadata(None)
        cluster_id, controller, nodes = _describe_cluster(cluster, meta)
        quorum = _quorum(cluster, problems)
        lagging = _lagging_groups(cluster, problems) if groups else []
    live = sorted(n[0] for n in nodes)
    offline, under = [], []
    hosted: set[int] = set()
    for t in sorted(meta.topics.values(), key=lambda t: t.name):
        for p in t.partitions.values():
            hosted.update(p.replicas)
            if p.leader < 0:
                offline.append([t.name, p.partition, p.replicas, p.isr])
            elif len(p.isr) < len(p.replicas):
                under.append([t.name, p.partition, p.leader, p.replicas, p.isr,
                              sorted(set(p.replicas) - set(p.isr))])
    down = sorted(hosted - set(live))
    if down:
        problems.insert(0, f"broker{'s' * (len(down) > 1)} {','.join(map(str, down))} down")
    if offline:
        problems.append(f"{len(offline)} partition{'s' * (len(offline) > 1)} offline")
    if under:
        problems.append(f"{len(under)} partition{'s' * (len(under) > 1)} under-replicated")
    overview = {
        "Healthy": not problems, "Problems": problems if output == Format.json else "; ".join(problems) or None,
        "ClusterId": cluster_id, "Controller": controller, "Brokers": live, "BrokersDown": down,
        "QuorumLeader": quorum.leader_id if quorum else None, "QuorumEpoch": quorum.leader_epoch if quorum else None,
        "QuorumVoters": [v.replica_id for v in quorum.current_voters] if quorum else None,
        "Topics": sum(not t.internal for t in meta.topics.values()),
        "Partitions": sum(len(t.partitions) for t in meta.topics.values()),
        "OfflinePartitions": len(offline), "UnderReplicated": len(under),
        "LaggingGroups": len(lagging) if groups else None,
    }
    sections = [Section(None, list(overview), [list(overview.values())], one=True, fields=True, key="overview")]
    as_text = output == Format.text
    more = [
        replace(quorum_replicas(quorum, as_text=as_text), title="quorum", key="quorum") if quorum else None,
        Section("offline partitions", ["topic", "partition", "replicas", "isr"], offline),
        Section("under-replicated partitions", ["topic", "partition", "leader", "replicas", "isr", "missing"], under),
        Section("lagging groups", ["group", "state", "total-lag", "partitions-lagging", "topics"], lagging)
        if groups else None,
    ]
    # Text shows what is there to see; JSON always has every list, empty or not.
    sections += [s for s in more if s is not None and (s.rows or not as_text)]
    show(output, *sections)
    if problems:
        raise typer.Exit(1)


def _quorum(cluster: Cluster, problems: list[str]):
    """The metadata quorum's partition as its leader describes it, or None where DescribeQuorum is
    not served (a ZooKeeper-based Kafka). Voters without a leader or behind are problems."""
    try:
        resp = cluster.request(wire.describe_quorum_request(), version=cluster.version(m.DescribeQuorumRequest))
    except UnsupportedApi:
        return None
    p = resp.topics[0].partitions[0] if not resp.error_code and resp.topics else None
    if p is None or p.error_code:
        code = error_code(resp.error_code or (p.error_code if p else 0))
        problems.append(f"the metadata quorum has no leader ({code.name})")
        return None
    now = int(time.time() * 1000)
    for v in p.current_voters:
        stale = v.last_fetch_timestamp < 0 or now - v.last_fetch_timestamp > VOTER_STALE_MS
        if v.replica_id != p.leader_id and stale:
            problems.append(f"voter {v.replica_id} is not fetching from the quorum leader")
    return p


def _lagging_groups(cluster: Cluster, problems: list[str]) -> list[list]:
    """[group, state, total lag, partitions lagging, topics] for each group whose committed
    offsets are behind the log end, most lagging first."""
    listed, missed = cluster.list_groups()
    problems += [f"groups not listed: {line}" for line in missed]
    rows = []
    for g in listed:
        try:
            _, _, lag = lags(cluster, g.group_id, ())
        except (KafkaError, BrokerUnreachable, UnsupportedApi) as e:
            problems.append(f"group {g.group_id}: {e}")
            continue
        behind = {tp: n for tp, n in lag.items() if n > 0}
        if behind:
            rows.append([g.group_id, g.group_state or None, sum(behind.values()), len(behind),
                         sorted({t for t, _ in behind})])
    return sorted(rows, key=lambda r: (-r[2], r[0]))


@app.command()
def up(
    nodes: int = typer.Option(3, "--nodes", "-n", min=1, help="How many broker+controller nodes."),
    data_dir: Path = typer.Option(Path("cluster-data"), "--dir", "-d",
                                  help="Each node's data and log under DIR/node-<id>."),
    port: int = typer.Option(9092, "--port", "-p",
                             help="Node i listens for clients on PORT+2(i-1) and for the quorum on the next port."),
    override: list[str] | None = typer.Option(None, "--override", "-o", help="key=value for every node. Repeatable."),
    secure: bool = typer.Option(False, "--secure", help="SASL_SSL on every listener: development certificates, "
                                "an admin (PLAIN) and a SCRAM-SHA-512 client user; prints the client settings."),
) -> None:
    """Start a local cluster (one process per node, sharing a Raft metadata quorum); Ctrl-C stops it.
    Data directories are kept, so the same command starts the same cluster again. Topics get
    min(3, N) replicas and, from three nodes on, min.insync.replicas=2 (--override changes them)."""
    from kafka_compat.storage.meta_properties import read_meta_properties
    from kafka_compat.testing.cluster import replicated_defaults
    from kafka_compat.testing.cluster_process import COMBINED, ClusterProcess

    settings = replicated_defaults(nodes)
    for item in override or []:
        key, sep, value = item.partition("=")
        if not sep:
            raise typer.BadParameter(f"{item!r} is not key=value", param_hint="--override")
        settings[key] = value
    if secure:
        settings = {**secure_settings(data_dir), **settings}
    existing = read_meta_properties(data_dir / "node-1" / "data")
    ports = {i: (port + 2 * (i - 1), port + 2 * (i - 1) + 1) for i in range(1, nodes + 1)}
    for i, pair in ports.items():  # before any node starts: a taken port would answer for a node
        for p, what in zip(pair, ("clients", "controller")):
            if not _port_free(p):
                typer.echo(f"error: port {p} (node {i}, {what}) is already in use; stop what holds it or choose "
                           "another --port", err=True)
                raise typer.Exit(2)
    cluster = ClusterProcess(data_dir, roles={i: COMBINED for i in ports}, overrides=settings, ports=ports,
                             cluster_id=existing["cluster.id"] if existing else None, log_format="console")
    typer.echo(f"Starting {nodes} nodes of cluster {cluster.cluster_id} under {data_dir}/ ...")
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # SIGTERM stops every node, as Ctrl-C does
    try:
        try:
            with progress("nodes ready", nodes) as bar:
                cluster.start(timeout=120, on_ready=lambda node: bar.advance())
        except RuntimeError as e:
            typer.echo(f"error: {e}", err=True)
            raise typer.Exit(1) from None
        for n in cluster.nodes.values():
            typer.echo(f"  node {n.id}: clients 127.0.0.1:{n.broker_port}, controller 127.0.0.1:{n.controller_port}, "
                       f"log {n.log_path}")
        typer.echo(f"Bootstrap servers: {cluster.bootstrap}")
        if secure:
            typer.echo(f"Client settings ({add_client_user(data_dir, cluster.bootstrap)}):\n"
                       + (data_dir / "client.properties").read_text())
        typer.echo("Ctrl-C stops the cluster.", err=True)
        while True:
            time.sleep(0.5)
            for n in cluster.nodes.values():
                if n.proc is not None and n.proc.poll() is not None and not getattr(n, "reported", False):
                    n.reported = True
                    typer.echo(f"node {n.id} exited with {n.proc.returncode}; see {n.log_path}", err=True)
    except KeyboardInterrupt:
        typer.echo("Stopping ...", err=True)
        cluster.stop()
    finally:
        cluster.close()


def secure_settings(data_dir: Path) -> dict[str, str]:
    """Every listener SASL_SSL: certificates under DIR/certs (made once), the nodes' own PLAIN user."""
    from kafka_compat.cli.certs import dev_certs

    certs_dir, secret = data_dir / "certs", data_dir / "secret"
    data_dir.mkdir(parents=True, exist_ok=True)
    if not secret.exists():
        secret.write_text(secrets.token_urlsafe(16))
        secret.chmod(0o600)
        dev_certs(certs_dir, ["localhost", "127.0.0.1"], [], secret.read_text())
    password = secret.read_text()
    jaas = ("org.apache.kafka.common.security.plain.PlainLoginModule required "
            f'username="admin" password="{password}" user_admin="{password}";')
    return {
        "listener.security.protocol.map": "PLAINTEXT:SASL_SSL,CONTROLLER:SASL_SSL",
        "ssl.keystore.type": "PKCS12", "ssl.keystore.location": str((certs_dir / "broker.p12").resolve()),
        "ssl.keystore.password": password, "ssl.truststore.type": "PEM",
        "ssl.truststore.location": str((certs_dir / "ca.pem").resolve()),
        "sasl.enabled.mechanisms": "PLAIN,SCRAM-SHA-512", "sasl.mechanism.controller.protocol": "PLAIN",
        "sasl.mechanism.inter.broker.protocol": "PLAIN",
        "listener.name.plaintext.plain.sasl.jaas.config": jaas, "listener.name.controller.plain.sasl.jaas.config": jaas,
    }


def add_client_user(data_dir: Path, bootstrap: str) -> str:
    """A SCRAM-SHA-512 user `client` (set as the admin), and DIR/client.properties for it; returns the path."""
    from kafka_compat.client import Cluster
    from kafka_compat.client.security import ClientSecurity
    from kafka_compat.protocol import messages as m
    from kafka_compat.security.sasl.scram import SCRAM_SHA_512, salted_password

    password, ca = (data_dir / "secret").read_text(), (data_dir / "certs" / "ca.pem").resolve()
    admin = ClientSecurity.from_properties({"security.protocol": "SASL_SSL", "ssl.ca.location": str(ca),
                                            "sasl.mechanism": "PLAIN", "sasl.username": "admin",
                                            "sasl.password": password})
    A, salt = m.AlterUserScramCredentialsRequest, secrets.token_bytes(24)
    with Cluster(bootstrap, security=admin) as cluster:
        cluster.request(A(upsertions=[A.ScramCredentialUpsertion(
            name="client", mechanism=SCRAM_SHA_512.type, iterations=4096, salt=salt,
            salted_password=salted_password(SCRAM_SHA_512, password, salt, 4096))]))
    path = data_dir / "client.properties"
    path.write_text(f"bootstrap.servers={bootstrap}\nsecurity.protocol=SASL_SSL\nssl.truststore.type=PEM\n"
                    f"ssl.truststore.location={ca}\nssl.ca.location={ca}\nsasl.mechanism=SCRAM-SHA-512\n"
                    "sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required "
                    f'username="client" password="{password}";\n')
    path.chmod(0o600)
    return str(path)


def _port_free(port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True
