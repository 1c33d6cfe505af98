"""`kafka-compat acl`, `kafka-compat user scram`, `kafka-compat quota`: ACLs, SCRAM credentials and
client quotas over the wire (CreateAcls / DescribeAcls / DeleteAcls, AlterUserScramCredentials /
DescribeUserScramCredentials, AlterClientQuotas / DescribeClientQuotas), as Kafka's kafka-acls and
kafka-configs do them. With `--command-config` they reach a secured listener."""

from __future__ import annotations

import secrets

import typer

from kafka_compat.cli.admin import BROKERS, COMMAND_CONFIG, connect, fail
from kafka_compat.cli.output import OUTPUT, Format, Section, show
from kafka_compat.client import error_code
from kafka_compat.protocol import messages as m
from kafka_compat.security.acls import AclOperation, AclPermissionType, PatternType, ResourceType
from kafka_compat.security.sasl.scram import MECHANISMS, salted_password

acl_app = typer.Typer(help="Create, list and delete ACLs.", no_args_is_help=True)
user_app = typer.Typer(help="Users: SCRAM credentials.", no_args_is_help=True)
scram_app = typer.Typer(help="Set, list and delete SCRAM credentials.", no_args_is_help=True)
user_app.add_typer(scram_app, name="scram")
quota_app = typer.Typer(help="Set and describe client quotas.", no_args_is_help=True)

RESOURCES = {"topic": ResourceType.TOPIC, "group": ResourceType.GROUP, "cluster": ResourceType.CLUSTER,
             "transactional-id": ResourceType.TRANSACTIONAL_ID, "any": ResourceType.ANY}


def _enum(kind, value: str, what: str):
    try:
        return kind[value.upper().replace("-", "_")]
    except KeyError:
        fail(f"unknown {what} {value!r}: one of {', '.join(k.name.lower() for k in kind if k.name != 'UNKNOWN')}", 2)


def _resource(resource: str) -> tuple[ResourceType, str]:
    """'topic:orders', 'group:billing', 'cluster' -> (type, name)."""
    kind, _, name = resource.partition(":")
    if kind not in RESOURCES:
        fail(f"resource {resource!r}: give topic:NAME, group:NAME, transactional-id:NAME or cluster", 2)
    rtype = RESOURCES[kind]
    return rtype, "kafka-cluster" if rtype == ResourceType.CLUSTER else name


PRINCIPAL = typer.Option(..., "--principal", help="User:NAME (User:* for everyone).")
RESOURCE = typer.Argument(..., help="topic:NAME, group:NAME, transactional-id:NAME or cluster.")
OPERATION = typer.Option(..., "--operation", help="read, write, create, delete, alter, describe, all, ...")
PATTERN = typer.Option("literal", "--pattern", help="literal or prefixed.")


@acl_app.command("create")
def acl_create(resource: str = RESOURCE, principal: str = PRINCIPAL, operation: list[str] = OPERATION,
               deny: bool = typer.Option(False, "--deny", help="A DENY ACL (default ALLOW)."),
               host: str = typer.Option("*", "--host"), pattern: str = PATTERN,
               brokers: str = BROKERS, command_config: str = COMMAND_CONFIG) -> None:
    """Create ACLs (one per operation)."""
    rtype, name = _resource(resource)
    C = m.CreateAclsRequest
    creations = [C.AclCreation(resource_type=rtype, resource_name=name,
                               resource_pattern_type=_enum(PatternType, pattern, "pattern"), principal=principal,
                               host=host, operation=_enum(AclOperation, op, "operation"),
                               permission_type=AclPermissionType.DENY if deny else AclPermissionType.ALLOW)
                 for op in operation]
    with connect(brokers, command_config) as cluster:
        resp = cluster.request(C(creations=creations))
    for r in resp.results:
        if r.error_code:
            fail(f"CreateAcls: {error_code(r.error_code).name} {r.error_message or ''}".rstrip())
    typer.echo(f"Created {len(creations)} ACL(s) on {resource}.")


def _filter(resource: str | None, principal: str | None, pattern: str):
    rtype, name = _resource(resource) if resource else (ResourceType.ANY, None)
    return dict(resource_type_filter=rtype, resource_name_filter=name,
                pattern_type_filter=_enum(PatternType, pattern, "pattern") if resource else PatternType.ANY,
                principal_filter=principal, host_filter=None, operation=AclOperation.ANY,
                permission_type=AclPermissionType.ANY)


@acl_app.command("list")
def acl_list(resource: str = typer.Argument(None, help="Only this resource (topic:NAME ...)."),
             principal: str = typer.Option(None, "--principal"), pattern: str = PATTERN,
             brokers: str = BROKERS, command_config: str = COMMAND_CONFIG, output: Format = OUTPUT) -> None:
    """ACLs matching the filter."""
    with connect(brokers, command_config) as cluster:
        resp = cluster.request(m.DescribeAclsRequest(**_filter(resource, principal, pattern)))
    if resp.error_code:
        fail(f"DescribeAcls: {error_code(resp.error_code).name} {resp.error_message or ''}".rstrip())
    rows = [[ResourceType(r.resource_type).name.lower(), r.resource_name, PatternType(r.pattern_type).name.lower(),
             a.principal, a.host, AclOperation(a.operation).name.lower(),
             AclPermissionType(a.permission_type).name.lower()] for r in resp.resources for a in r.acls]
    show(output, Section("ACLs", ["Resource type", "Name", "Pattern", "Principal", "Host", "Operation", "Permission"],
                         rows))


@acl_app.command("delete")
def acl_delete(resource: str = RESOURCE, principal: str = typer.Option(None, "--principal"), pattern: str = PATTERN,
               brokers: str = BROKERS, command_config: str = COMMAND_CONFIG) -> None:
    """Delete the ACLs on a resource (of one principal with --principal)."""
    D = m.DeleteAclsRequest
    with connect(brokers, command_config) as cluster:
        resp = cluster.request(D(filters=[D.DeleteAclsFilter(**_filter(resource, principal, pattern))]))
    result = resp.filter_results[0]
    if result.error_code:
        fail(f"DeleteAcls: {error_code(result.error_code).name} {result.error_message or ''}".rstrip())
    typer.echo(f"Deleted {len(result.matching_acls)} ACL(s).")


MECHANISM = typer.Option("SCRAM-SHA-512", "--mechanism", help="SCRAM-SHA-256 or SCRAM-SHA-512.")


@scram_app.command("set")
def scram_set(user: str = typer.Argument(...), password: str = typer.Option(..., "--password", prompt=True,
                                                                            hide_input=True),
              mechanism: list[str] = MECHANISM, iterations: int = typer.Option(4096, "--iterations"),
              brokers: str = BROKERS, command_config: str = COMMAND_CONFIG) -> None:
    """Set a user's SCRAM credential (the password never leaves this host: salted here, as Kafka's tools do)."""
    A = m.AlterUserScramCredentialsRequest
    with connect(brokers, command_config) as cluster:
        for name in mechanism:
            mech = MECHANISMS.get(name.upper())
            if mech is None:
                fail(f"unknown mechanism {name}: SCRAM-SHA-256 or SCRAM-SHA-512", 2)
            salt = secrets.token_bytes(24)
            resp = cluster.request(A(upsertions=[A.ScramCredentialUpsertion(
                name=user, mechanism=mech.type, iterations=iterations, salt=salt,
                salted_password=salted_password(mech, password, salt, iterations))]))
            _scram_result(resp)
    typer.echo(f"Set {', '.join(mechanism)} for {user}.")


def _scram_result(resp) -> None:
    for r in resp.results:
        if r.error_code:
            fail(f"AlterUserScramCredentials: {error_code(r.error_code).name} {r.error_message or ''}".rstrip())


@scram_app.command("delete")
def scram_delete(user: str = typer.Argument(...), mechanism: list[str] = MECHANISM,
                 brokers: str = BROKERS, command_config: str = COMMAND_CONFIG) -> None:
    """Delete a user's SCRAM credential."""
    A = m.AlterUserScramCredentialsRequest
    with connect(brokers, command_config) as cluster:
        for name in mechanism:
            mech = MECHANISMS.get(name.upper())
            if mech is None:
                fail(f"unknown mechanism {name}: SCRAM-SHA-256 or SCRAM-SHA-512", 2)
            _scram_result(cluster.request(A(deletions=[A.ScramCredentialDeletion(name=user, mechanism=mech.type)])))
    typer.echo(f"Deleted {', '.join(mechanism)} for {user}.")


@scram_app.command("list")
def scram_list(users: list[str] = typer.Argument(None, help="Only these users."), brokers: str = BROKERS,
               command_config: str = COMMAND_CONFIG, output: Format = OUTPUT) -> None:
    """Users with SCRAM credentials: mechanism and iterations (never the keys)."""
    D = m.DescribeUserScramCredentialsRequest
    with connect(brokers, command_config) as cluster:
        resp = cluster.request(D(users=[D.UserName(name=u) for u in users] if users else None))
    if resp.error_code:
        fail(f"DescribeUserScramCredentials: {error_code(resp.error_code).name} {resp.error_message or ''}".rstrip())
    names = {mech.type: name for name, mech in MECHANISMS.items()}
    rows = [[r.user, names.get(c.mechanism, c.mechanism), c.iterations] for r in resp.results if not r.error_code
            for c in r.credential_infos]
    show(output, Section("SCRAM credentials", ["User", "Mechanism", "Iterations"], rows))


ENTITY = typer.Option(..., "--entity", help="user=NAME, client-id=NAME or ip=ADDRESS (NAME empty: the default); "
                                             "user and client-id together name one entity.")


def _entity(entity: list[str]) -> list[tuple[str, str | None]]:
    out = []
    for e in entity:
        kind, sep, name = e.partition("=")
        if not sep or kind not in ("user", "client-id", "ip"):
            fail(f"entity {e!r}: give user=NAME, client-id=NAME or ip=ADDRESS", 2)
        out.append((kind, name or None))
    return out


@quota_app.command("set")
def quota_set(entity: list[str] = ENTITY,
              values: list[str] = typer.Argument(..., help="KEY=VALUE (producer_byte_rate=1048576 ...); KEY= removes."),
              brokers: str = BROKERS, command_config: str = COMMAND_CONFIG) -> None:
    """Set or remove quotas of an entity (kafka-configs --alter --add-config)."""
    A = m.AlterClientQuotasRequest
    ops = []
    for kv in values:
        key, sep, value = kv.partition("=")
        if not sep:
            fail(f"{kv!r} is not KEY=VALUE", 2)
        try:
            ops.append(A.OpData(key=key, value=float(value) if value else 0.0, remove=not value))
        except ValueError:
            fail(f"{kv!r}: the value is not a number", 2)
    request = A(entries=[A.EntryData(entity=[A.EntityData(entity_type=t, entity_name=n) for t, n in _entity(entity)],
                                     ops=ops)], validate_only=False)
    with connect(brokers, command_config) as cluster:
        resp = cluster.request(request)
    for e in resp.entries:
        if e.error_code:
            fail(f"AlterClientQuotas: {error_code(e.error_code).name} {e.error_message or ''}".rstrip())
    typer.echo(f"Set {len(ops)} quota(s) on {', '.join(entity)}.")


@quota_app.command("describe")
def quota_describe(entity: list[str] = typer.Option(None, "--entity", help="Only this entity (default: all)."),
                   brokers: str = BROKERS, command_config: str = COMMAND_CONFIG, output: Format = OUTPUT) -> None:
    """Quotas by entity (kafka-configs --describe)."""
    D = m.DescribeClientQuotasRequest
    components = [D.ComponentData(entity_type=t, match_type=0 if n is not None else 1, match=n)
                  for t, n in _entity(entity or [])]
    with connect(brokers, command_config) as cluster:
        resp = cluster.request(D(components=components, strict=False))
    if resp.error_code:
        fail(f"DescribeClientQuotas: {error_code(resp.error_code).name} {resp.error_message or ''}".rstrip())
    rows = [[", ".join(f"{e.entity_type}={e.entity_name if e.entity_name is not None else '<default>'}"
                       for e in entry.entity), v.key, v.value] for entry in resp.entries or [] for v in entry.values]
    show(output, Section("Client quotas", ["Entity", "Key", "Value"], rows))
