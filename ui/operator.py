"""Operator actions need the operator token: ``Authorization: Bearer <SEP_OPERATOR_TOKEN>``.

Without a configured token every operator action is refused (403), so a stack started without
one exposes none; a missing token is 401 (with ``WWW-Authenticate``), a wrong one 403.  The
comparison takes the same time whatever the token's prefix.
"""

from __future__ import annotations

import hmac

from starlette.requests import Request
from starlette.responses import JSONResponse

from ui.errors import error_body
from ui.services import services_of


def refused(request: Request) -> JSONResponse | None:
    """None if the request carries the operator token, else the response that refuses it."""
    token = services_of(request.app).settings.operator_token
    if not token:
        return JSONResponse(
            error_body(
                "forbidden", "operator actions are off: start the API with SEP_OPERATOR_TOKEN set"
            ),
            403,
        )
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not given.strip():
        return JSONResponse(
            error_body(
                "unauthorized", "an operator action: send 'Authorization: Bearer <operator token>'"
            ),
            401,
            headers={"WWW-Authenticate": 'Bearer realm="sep-operator"'},
        )
    if not hmac.compare_digest(given.strip().encode(), token.encode()):
        return JSONResponse(error_body("forbidden", "wrong operator token"), 403)
    return None
