"""ApiVersions (v0-v4), on every listener: the versions the listener's handlers serve, and the
features.

An ApiVersions request at a version we do not know is answered (by the pipeline) with a v0 body
carrying UNSUPPORTED_VERSION and this list, so the client can retry at a version we serve.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from kafka_compat.metadata.controller import METADATA_VERSION, MINIMUM_METADATA_VERSION
from kafka_compat.protocol import messages as m
from kafka_compat.protocol.errors import ErrorCode
from kafka_compat.server.handlers import BROKER, CONTROLLER, Handler, RequestContext, handles

R = m.ApiVersionsResponse


def api_versions_response(apis: Mapping[int, Handler], error: ErrorCode = ErrorCode.NONE,
                          finalized_epoch: int = -1) -> m.ApiVersionsResponse:
    keys = [R.ApiVersion(api_key=k, min_version=h.min_version, max_version=h.max_version)
            for k, h in sorted(apis.items())]
    return R(
        error_code=error,
        api_keys=keys,
        supported_features=[R.SupportedFeatureKey(name="metadata.version", min_version=MINIMUM_METADATA_VERSION,
                                                  max_version=METADATA_VERSION)],
        finalized_features_epoch=finalized_epoch,
        finalized_features=[R.FinalizedFeatureKey(name="metadata.version", max_version_level=METADATA_VERSION,
                                                  min_version_level=METADATA_VERSION)] if finalized_epoch >= 0 else [],
    )


@handles(m.ApiKey.API_VERSIONS, versions=(0, 4), listeners=(BROKER, CONTROLLER))
async def api_versions(ctx: RequestContext, request: m.ApiVersionsRequest) -> m.ApiVersionsResponse:
    if ctx.api_version >= 3 and not _valid_software(request):
        return R(error_code=ErrorCode.INVALID_REQUEST, api_keys=[])
    return api_versions_response(ctx.apis, finalized_epoch=max(ctx.broker.metadata.offset, 0))


_SOFTWARE = re.compile(r"^[a-zA-Z0-9](?:[a-zA-Z0-9\-.]*[a-zA-Z0-9])?$")


def _valid_software(request: m.ApiVersionsRequest) -> bool:
    """KIP-511: client software name and version must be non-empty, alphanumerics, '.', '-'."""
    return bool(_SOFTWARE.match(request.client_software_name or "")) and bool(
        _SOFTWARE.match(request.client_software_version or ""))
