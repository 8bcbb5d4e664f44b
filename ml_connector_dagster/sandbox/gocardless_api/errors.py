"""GoCardless's error responses: `{"error": {message, documentation_url, type, request_id, code, errors}}`.

Handlers raise `ApiError`; `guard` (around each route) and the gate turn it into the JSON GoCardless
sends, so the official `gocardless_pro` client raises the same exception classes as against GoCardless.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from ..gocardless_shapes import ErrorBody, ErrorDetail
from ..webhook_sender import new_id

DOCS = "https://developer.gocardless.com/api-reference"

Handler = Callable[[Request], Awaitable[Response]]


class ApiError(Exception):
    """An error answered in GoCardless's shape: {"error": {type, code, message, errors, ...}}."""

    def __init__(
        self, status: int, error_type: str, reason: str, message: str, errors: list[ErrorDetail] | None = None
    ) -> None:
        super().__init__(message)
        self.status, self.error_type, self.reason, self.message = status, error_type, reason, message
        self.errors = errors or [{"reason": reason, "message": message}]


def not_found() -> ApiError:
    return ApiError(404, "invalid_api_usage", "resource_not_found", "Resource not found")


def validation_failed(errors: list[ErrorDetail]) -> ApiError:
    """422 with one entry per field: {"field", "message", "request_pointer"}."""
    return ApiError(422, "validation_failed", "validation_failed", "Validation failed", errors)


def error_body(
    status: int, error_type: str, reason: str, message: str, errors: list[ErrorDetail] | None = None
) -> ErrorBody:
    return {
        "error": {
            "message": message,
            "documentation_url": f"{DOCS}#{reason}",
            "type": error_type,
            "request_id": new_id("RQ"),
            "code": status,
            "errors": errors or [{"reason": reason, "message": message}],
        }
    }


def error_response(exc: ApiError, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(
        error_body(exc.status, exc.error_type, exc.reason, exc.message, exc.errors),
        status_code=exc.status,
        headers=headers,
    )


def guard(handler: Handler) -> Handler:
    """Turn ApiError into GoCardless's error JSON."""

    async def wrapped(request: Request) -> Response:
        try:
            return await handler(request)
        except ApiError as exc:
            return error_response(exc)

    return wrapped


async def unknown_path(request: Request, exc: Exception) -> Response:
    """Starlette's 404 and 405 (no route, wrong method) in GoCardless's words."""
    if isinstance(exc, HTTPException) and exc.status_code == 405:
        return error_response(ApiError(405, "invalid_api_usage", "method_not_allowed", "Method not allowed"))
    return error_response(ApiError(404, "invalid_api_usage", "path_not_found", "Path not found"))
