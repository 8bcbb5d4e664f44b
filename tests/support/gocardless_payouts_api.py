"""A GoCardless payouts API for tests, on loopback: `GET /payouts/{id}` and `GET /payout_items?payout=...`
answer exactly what the test put in `payouts` and `items` (bodies from support.gocardless_shapes), in
GoCardless's envelopes, so the product's real client reads them over HTTP. `gone` lists payouts whose items
answer 410 Gone, as GoCardless does for payouts older than 6 months. `reads` records the payouts read."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from ml_connector_dagster.httpserve import ServerHandle, serve_in_thread

HEADERS = {"RateLimit-Limit": "1000", "RateLimit-Remaining": "999", "RateLimit-Reset": "Mon, 04 Mar 2024 10:01:00 GMT"}


@dataclass
class PayoutsApi:
    payouts: dict[str, dict[str, Any]] = field(default_factory=dict)
    items: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    gone: set[str] = field(default_factory=set)
    reads: list[str] = field(default_factory=list)
    handle: ServerHandle | None = None

    @property
    def url(self) -> str:
        assert self.handle is not None, "start() it first"
        return self.handle.url

    def start(self) -> PayoutsApi:
        app = Starlette(
            routes=[Route("/payouts/{payout_id}", self._payout), Route("/payout_items", self._items)],
        )
        self.handle = serve_in_thread(app)
        return self

    def stop(self) -> None:
        if self.handle is not None:
            self.handle.stop()

    async def _payout(self, request: Request) -> JSONResponse:
        payout_id = request.path_params["payout_id"]
        self.reads.append(payout_id)
        if payout_id not in self.payouts:
            return _error(404, "invalid_api_usage", "resource_not_found")
        return JSONResponse({"payouts": self.payouts[payout_id]}, headers=HEADERS)

    async def _items(self, request: Request) -> JSONResponse:
        payout_id = request.query_params.get("payout", "")
        if payout_id in self.gone:
            return _error(410, "invalid_api_usage", "gone")
        body = {"payout_items": self.items.get(payout_id, []), "meta": {"cursors": {"before": None, "after": None}}}
        return JSONResponse({**body, "meta": {**body["meta"], "limit": 500}}, headers=HEADERS)


def _error(status: int, kind: str, reason: str) -> JSONResponse:
    error = {
        "type": kind,
        "code": status,
        "message": reason.replace("_", " "),
        "documentation_url": f"https://developer.gocardless.com/api-reference#{reason}",
        "request_id": "REQ123",
        "errors": [{"reason": reason, "message": reason.replace("_", " ")}],
    }
    return JSONResponse({"error": error}, status_code=status, headers=HEADERS)
