"""SaslHandshake (v0-v1) and SaslAuthenticate (v0-v2) as the pipeline sees them.

On SASL listeners the connection's SASL gate (`server.channel_security`) answers both, before and
after authentication; they reach these handlers only on listeners without SASL, where Kafka
answers ILLEGAL_SASL_STATE. Registering them here is also what makes ApiVersions list them.
"""

from __future__ import annotations

from kafka_compat.protocol import messages as m
from kafka_compat.protocol.errors import ErrorCode
from kafka_compat.server.handlers import BROKER, CONTROLLER, RequestContext, handles

A = m.ApiKey


@handles(A.SASL_HANDSHAKE, versions=(0, 1), listeners=(BROKER, CONTROLLER))
async def sasl_handshake(ctx: RequestContext, request: m.SaslHandshakeRequest) -> m.SaslHandshakeResponse:
    return m.SaslHandshakeResponse(error_code=ErrorCode.ILLEGAL_SASL_STATE)


@handles(A.SASL_AUTHENTICATE, versions=(0, 2), listeners=(BROKER, CONTROLLER))
async def sasl_authenticate(ctx: RequestContext, request: m.SaslAuthenticateRequest) -> m.SaslAuthenticateResponse:
    return m.SaslAuthenticateResponse(error_code=ErrorCode.ILLEGAL_SASL_STATE,
                                      error_message="Unexpected SASL request on a listener without SASL")
