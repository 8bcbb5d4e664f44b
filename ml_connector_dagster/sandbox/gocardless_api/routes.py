"""The stand-in's HTTP routes: GoCardless's resources over one GoCardlessWorld, and the control API.

Reads are GET /{resource} (a page, listing.py) and GET /{resource}/{id}, copied under the world's lock;
the writes the product makes are PUT /customers/{id} (metadata) and nothing else. The items of a payout
created more than 6 months ago answer 410 Gone, as GoCardless's do. The control API plays
the scenario's next step (play.py: the step's Sage changes, then its GoCardless actions) and sets faults;
other stand-ins may add control routes of their own (the Sage changes'). `create_app` wraps the routes in
the gate (gate.py).
"""

from __future__ import annotations

import asyncio
import copy
import json
from calendar import monthrange
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any, TypeGuard

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ..gocardless_shapes import CUSTOMER_ATTRIBUTES, CustomerAttribute, PayoutItem, Resource
from ..gocardless_state import GoCardlessWorld, WorldStatus, parse_iso
from ..webhook_sender import SenderStatus, WebhookSender
from .errors import ApiError, Handler, guard, not_found, unknown_path, validation_failed
from .faults import Fault, Faults, FaultsDescription
from .gate import CONTROL_PREFIX, ApiGate
from .listing import Filter, Item, date_filters, equals, links, page, time_filters
from .play import StepPlayer

ITEMS_KEPT_MONTHS = 6  # GoCardless answers 410 Gone for the items of older payouts
LINKS_OF_EVENTS = ("payment", "mandate", "refund", "payout", "customer", "subscription", "parent_event")

Source = Callable[[], Mapping[str, Resource]]  # the world's items of one resource, by id


class SandboxStatus(WorldStatus, FaultsDescription):
    """GET /_sandbox/status: the play, the webhook deliveries, the faults."""

    webhooks: SenderStatus


class _NumberedItem(Resource):
    """A payout item with the id and created_at it lacks, so that it can be paged like a resource."""

    item: PayoutItem


def sandbox_status(world: GoCardlessWorld, sender: WebhookSender, faults: Faults) -> SandboxStatus:
    return {**world.status(), "webhooks": sender.status(), **faults.describe()}


def create_app(
    world: GoCardlessWorld,
    sender: WebhookSender,
    faults: Faults,
    token: str,
    player: StepPlayer | None = None,
    control_routes: Sequence[Route] = (),
) -> ApiGate:
    """The stand-in's app; `player` plays a step (default: GoCardless actions only), `control_routes` are
    more control routes (under CONTROL_PREFIX, outside the gate's checks)."""
    api = GoCardlessApi(world, sender, faults, player or StepPlayer(world, sender))
    routes = [*api.routes(), *control_routes]
    app = Starlette(routes=routes, exception_handlers={404: unknown_path, 405: unknown_path})
    return ApiGate(app, faults, token)


class GoCardlessApi:
    """Routes over one GoCardlessWorld; every read copies under the world's lock."""

    def __init__(self, world: GoCardlessWorld, sender: WebhookSender, faults: Faults, player: StepPlayer) -> None:
        self.world, self.sender, self.faults, self.player = world, sender, faults, player

    def routes(self) -> list[Route]:
        routes = []
        for name, (source, filters) in self._lists().items():
            routes.append(Route(f"/{name}", self._lister(name, source, filters), methods=["GET"]))
            routes.append(Route(f"/{name}/{{id}}", self._getter(name, source), methods=["GET"]))
        routes += [
            Route("/customers/{id}", guard(self.update_customer), methods=["PUT"]),
            Route("/payout_items", guard(self.payout_items), methods=["GET"]),
            Route(f"{CONTROL_PREFIX}/step", self.control_step, methods=["POST"]),
            Route(f"{CONTROL_PREFIX}/status", self.control_status, methods=["GET"]),
            Route(f"{CONTROL_PREFIX}/faults", self.control_faults, methods=["GET", "POST", "DELETE"]),
        ]
        return routes

    def _lists(self) -> dict[str, tuple[Source, dict[str, Filter]]]:
        """Each listable resource: where its items are, and the filters GoCardless accepts for it."""
        w = self.world
        created = time_filters("created_at")

        def customer_of_payment(payment: Item) -> object:
            mandate_id = links(payment, "mandate")
            mandate = w.mandates.get(mandate_id) if isinstance(mandate_id, str) else None
            return mandate["links"]["customer"] if mandate is not None else None

        return {
            "payments": (
                lambda: w.payments,
                {
                    **created,
                    **date_filters("charge_date"),
                    "status": _field("status"),
                    "currency": _field("currency"),
                    "mandate": _linked("mandate"),
                    "creditor": _linked("creditor"),
                    "customer": equals(customer_of_payment),
                },
            ),
            "customers": (lambda: w.customers, {**created}),
            "mandates": (lambda: w.mandates, {**created, "status": _field("status"), "customer": _linked("customer")}),
            "refunds": (lambda: w.refunds, {**created, "payment": _linked("payment"), "mandate": _linked("mandate")}),
            "payouts": (
                lambda: w.payouts,
                {
                    **created,
                    "status": _field("status"),
                    "currency": _field("currency"),
                    "creditor": _linked("creditor"),
                },
            ),
            "events": (
                lambda: w.events,
                {
                    **created,
                    "resource_type": _field("resource_type"),
                    "action": _field("action"),
                    **{name: _linked(name) for name in LINKS_OF_EVENTS},
                },
            ),
            "creditors": (lambda: {w.creditor["id"]: w.creditor}, {**created}),
        }

    def _lister(self, name: str, source: Source, filters: dict[str, Filter]) -> Handler:
        ignored = ("include",) if name == "events" else ()

        async def handler(request: Request) -> Response:
            with self.world.lock:
                items, meta = page(list(source().values()), dict(request.query_params), filters, ignored)
            return JSONResponse({name: items, "meta": meta})

        return guard(handler)

    def _getter(self, name: str, source: Source) -> Handler:
        async def handler(request: Request) -> Response:
            with self.world.lock:
                item = source().get(request.path_params["id"])
                body = {name: copy.deepcopy(item)} if item is not None else None
            if body is None:
                raise not_found()
            return JSONResponse(body)

        return guard(handler)

    async def update_customer(self, request: Request) -> Response:
        customer_id = request.path_params["id"]
        if customer_id not in self.world.customers:
            raise not_found()
        changes = _customer_changes(await request.body())
        return JSONResponse({"customers": self.world.update_customer(customer_id, changes)})

    async def payout_items(self, request: Request) -> Response:
        """Items carry no id of their own; the stand-in numbers them internally to serve as cursors."""
        params = dict(request.query_params)
        payout_id = params.pop("payout", None)
        if not payout_id:
            raise validation_failed([{"field": "payout", "message": "is required", "request_pointer": "/payout"}])
        with self.world.lock:
            payout = self.world.payouts.get(payout_id)
            if payout is None:
                raise not_found()
            if _months_later(parse_iso(payout["created_at"]), ITEMS_KEPT_MONTHS) < self.world.now():
                raise ApiError(
                    410,
                    "invalid_api_usage",
                    "gone",
                    f"Payout items are only available for payouts created in the last {ITEMS_KEPT_MONTHS} months",
                )
            count = len(self.world.payout_items[payout_id])
            numbered: list[_NumberedItem] = [
                {"id": f"{payout_id}-{count - n:05d}", "created_at": payout["created_at"], "item": item}
                for n, item in enumerate(self.world.payout_items[payout_id])
            ]
            chunk, meta = page(numbered, params, {}, ("include_2020_tax_cutover",))
        return JSONResponse({"payout_items": [n["item"] for n in chunk], "meta": meta})

    # -- control --------------------------------------------------------------------------------------------

    async def control_step(self, request: Request) -> Response:
        wait = request.query_params.get("wait")
        played = await asyncio.get_running_loop().run_in_executor(None, self.player.play)
        settled = None
        if wait:
            settled = await asyncio.get_running_loop().run_in_executor(None, self.sender.wait_idle, float(wait))
        return JSONResponse(
            {
                "step": played.step,
                "total_steps": played.total_steps,
                "finished": played.finished,
                "sage_changes": played.sage_changes,
                "events": played.events,
                "webhook_ids": played.webhook_ids,
                "deliveries_settled": settled,
            }
        )

    async def control_status(self, _request: Request) -> Response:
        return JSONResponse(sandbox_status(self.world, self.sender, self.faults))

    async def control_faults(self, request: Request) -> Response:
        if request.method == "DELETE":
            self.faults.configure([], None)
        elif request.method == "POST":
            try:
                body = json.loads(await request.body() or b"{}")
                faults = [Fault.parse(f) for f in body.get("faults", [])]
                self.faults.configure(faults, body.get("rate_limit"))
            except (ValueError, AttributeError, TypeError) as exc:
                return JSONResponse({"error": str(exc)}, status_code=400)
        return JSONResponse(self.faults.describe())


def _months_later(moment: datetime, months: int) -> datetime:
    """The same day and time `months` later (the month's last day when it is shorter)."""
    month = moment.month - 1 + months
    year, month = moment.year + month // 12, month % 12 + 1
    return moment.replace(year=year, month=month, day=min(moment.day, monthrange(year, month)[1]))


def _field(name: str) -> Filter:
    """`?status=paid_out`: the item's field has that value."""
    return equals(lambda i: i[name])


def _linked(name: str) -> Filter:
    """`?mandate=MD123`: the item links to that id."""
    return equals(lambda i: links(i, name))


def _customer_changes(raw: bytes) -> dict[CustomerAttribute, Any]:
    """The body of PUT /customers/{id}: `{"customers": {...}}` with customer attributes only.

    Only the keys and the metadata are checked; other values are kept as sent (JSON values, hence Any).
    """
    try:
        body = json.loads(raw or b"{}")
    except ValueError:
        raise ApiError(400, "invalid_api_usage", "invalid_document_structure", "Invalid document structure") from None
    changes = body.get("customers") if isinstance(body, dict) else None
    if not isinstance(changes, dict):
        raise ApiError(
            400, "invalid_api_usage", "invalid_document_structure", 'The request body must be {"customers": {...}}'
        )
    attributes = {key: value for key, value in changes.items() if _is_attribute(key)}
    unknown = sorted(set(changes) - set(attributes))
    if unknown:
        raise validation_failed(
            [
                {"field": k, "message": "is not a customer attribute", "request_pointer": f"/customers/{k}"}
                for k in unknown
            ]
        )
    if "metadata" in attributes:
        _check_metadata(attributes["metadata"])
    return attributes


def _is_attribute(key: str) -> TypeGuard[CustomerAttribute]:
    return key in CUSTOMER_ATTRIBUTES


def _check_metadata(metadata: object) -> None:
    problems = []
    if not isinstance(metadata, dict):
        problems.append("must be an object of string keys and values")
    else:
        if len(metadata) > 3:
            problems.append("may have at most 3 keys")
        for key, value in metadata.items():
            if len(key) > 50:
                problems.append(f"key {key[:20]!r}... is longer than 50 characters")
            if not isinstance(value, str) or len(value) > 500:
                problems.append(f"value of {key!r} must be a string of at most 500 characters")
    if problems:
        raise validation_failed(
            [{"field": "metadata", "message": p, "request_pointer": "/customers/metadata"} for p in problems]
        )
