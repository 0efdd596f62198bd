"""Error responses: JSON a person can act on, with field paths; never a bare 500 for bad input."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response


class InvalidInput(Exception):
    """A request the client must fix: 422 with one entry per field at fault."""

    def __init__(self, errors: list[dict[str, str]], message: str = "invalid input") -> None:
        super().__init__(message)
        self.errors = errors
        self.message = message

    @classmethod
    def from_validation(cls, exc: ValidationError, where: str = "") -> InvalidInput:
        errors = []
        for error in exc.errors(include_url=False, include_input=False):
            path = ".".join(str(part) for part in error["loc"])
            errors.append(
                {
                    "path": f"{where}.{path}" if where and path else (path or where),
                    "message": error["msg"],
                }
            )
        return cls(errors)


def error_body(error: str, message: str, **extra: Any) -> dict[str, Any]:
    return {"error": error, "message": message, **extra}


async def invalid_input(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, InvalidInput)
    return JSONResponse(error_body("invalid_input", exc.message, errors=exc.errors), 422)


async def http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code == 405:
        body = error_body("method_not_allowed", "method not allowed")
        return JSONResponse(body, 405, headers=exc.headers)
    return JSONResponse(
        error_body(_name(exc.status_code), str(exc.detail)), exc.status_code, headers=exc.headers
    )


def _name(status: int) -> str:
    return {404: "not_found", 400: "bad_request", 503: "unavailable"}.get(status, "error")


def not_found(what: str) -> JSONResponse:
    return JSONResponse(error_body("not_found", f"no {what}"), 404)


EXCEPTION_HANDLERS: dict[Any, Any] = {InvalidInput: invalid_input, HTTPException: http_error}
