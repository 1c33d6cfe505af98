"""AlterUserScramCredentials and DescribeUserScramCredentials (v0) against the metadata image, as
Kafka's ScramControlManager and ScramImage answer them. The client salts the password; the
controller keeps the salt and iterations and derives the stored and server keys, so the password
never reaches the log. The handler authorizes first (ALTER, resp. DESCRIBE, on the cluster).
"""

from __future__ import annotations

from kafka_compat.metadata.image import MetadataImage
from kafka_compat.protocol import messages as m
from kafka_compat.protocol.errors import ErrorCode
from kafka_compat.protocol.primitives import Message
from kafka_compat.security.sasl.scram import BY_TYPE, credential_from_salted

TWICE = "A user credential cannot be altered twice in the same request"


def _name_problem(name: str, mechanism: int) -> tuple[ErrorCode, str] | None:
    if not name:
        return ErrorCode.UNACCEPTABLE_CREDENTIAL, "Username must not be empty"
    if mechanism not in BY_TYPE:
        return ErrorCode.UNSUPPORTED_SASL_MECHANISM, "Unknown SCRAM mechanism"
    return None


def alter_user_scram_credentials(image: MetadataImage, req: m.AlterUserScramCredentialsRequest,
                                 ) -> tuple[list[Message], m.AlterUserScramCredentialsResponse]:
    """One result per user; a user named twice in the request (deleted or upserted) fails whole."""
    R = m.AlterUserScramCredentialsResponse
    deletions: dict[str, object] = {}
    upsertions: dict[str, object] = {}
    errors: dict[str, tuple[ErrorCode, str]] = {}
    for d in req.deletions:
        if d.name in errors:
            continue
        if deletions.pop(d.name, None) is not None:
            errors[d.name] = (ErrorCode.DUPLICATE_RESOURCE, TWICE)
            continue
        problem = _name_problem(d.name, d.mechanism)
        if problem is None and (d.name, d.mechanism) not in image.scram:
            problem = ErrorCode.RESOURCE_NOT_FOUND, "Attempt to delete a user credential that does not exist"
        if problem:
            errors[d.name] = problem
        else:
            deletions[d.name] = d
    for u in req.upsertions:
        if u.name in errors:
            continue
        if deletions.pop(u.name, None) is not None or upsertions.pop(u.name, None) is not None:
            errors[u.name] = (ErrorCode.DUPLICATE_RESOURCE, TWICE)
            continue
        problem = _name_problem(u.name, u.mechanism)
        if problem is None:
            mech = BY_TYPE[u.mechanism]
            if u.iterations < mech.min_iterations:
                problem = ErrorCode.UNACCEPTABLE_CREDENTIAL, "Too few iterations"
            elif u.iterations > mech.max_iterations:
                problem = ErrorCode.UNACCEPTABLE_CREDENTIAL, "Too many iterations"
        if problem:
            errors[u.name] = problem
        else:
            upsertions[u.name] = u
    records: list[Message] = []
    results = []
    ok = dict(error_code=ErrorCode.NONE, error_message=None)
    for d in deletions.values():
        records.append(m.RemoveUserScramCredentialRecord(name=d.name, mechanism=d.mechanism))
        results.append(R.AlterUserScramCredentialsResult(user=d.name, **ok))
    for u in upsertions.values():
        c = credential_from_salted(BY_TYPE[u.mechanism], bytes(u.salt), bytes(u.salted_password), u.iterations)
        records.append(m.UserScramCredentialRecord(name=u.name, mechanism=u.mechanism, salt=c.salt,
                                                   stored_key=c.stored_key, server_key=c.server_key,
                                                   iterations=c.iterations))
        results.append(R.AlterUserScramCredentialsResult(user=u.name, **ok))
    results += [R.AlterUserScramCredentialsResult(user=user, error_code=code, error_message=message)
                for user, (code, message) in errors.items()]
    return records, R(results=results)


def describe_user_scram_credentials(image: MetadataImage, req: m.DescribeUserScramCredentialsRequest,
                                    ) -> m.DescribeUserScramCredentialsResponse:
    """The mechanisms and iterations of each user named (every user when none is), never the keys."""
    R = m.DescribeUserScramCredentialsResponse
    if req.users:
        seen: dict[str, bool] = {}
        for u in req.users:
            seen[u.name] = u.name in seen  # True: named twice
    else:
        seen = dict.fromkeys(sorted({user for user, _ in image.scram}), False)
    results = []
    for user, twice in seen.items():
        if twice:
            results.append(R.DescribeUserScramCredentialsResult(
                user=user, error_code=ErrorCode.DUPLICATE_RESOURCE,
                error_message=f"Cannot describe SCRAM credentials for the same user twice in a single request: {user}"))
            continue
        infos = [R.CredentialInfo(mechanism=mech, iterations=image.scram[(user, mech)].iterations)
                 for mech in sorted(BY_TYPE) if (user, mech) in image.scram]
        if infos:
            results.append(R.DescribeUserScramCredentialsResult(user=user, credential_infos=infos))
        else:
            results.append(R.DescribeUserScramCredentialsResult(
                user=user, error_code=ErrorCode.RESOURCE_NOT_FOUND,
                error_message=f"Attempt to describe a user credential that does not exist: {user}"))
    return R(results=results)
