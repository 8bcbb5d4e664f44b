"""GoCardless for tests: the published signature vector, events and signed deliveries as GoCardless sends them."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import httpx

from ml_connector_dagster.gocardless.webhooks import sign
from ml_connector_dagster.sandbox.scenario import bundled

# GoCardless's published signature vector (tests/data/README.md says where it comes from).
VECTOR = Path(__file__).resolve().parents[1] / "data" / "gocardless-vector-a.body"
VECTOR_SECRET = "ED7D658C-D8EB-4941-948B-3973214F2D49"
VECTOR_SIGNATURE = "2693754819d3e32d7e8fcb13c729631f316c6de8dc1cf634d6527f1c07276e7e"
NEW_SECRET = "rotated-secret-0123456789"
TOKEN = "sandbox_token"
FAST_RETRIES = (0.01, 0.02, 0.05, 0.1)


def event(
    event_id: str,
    kind: str = "payments.confirmed",
    resource_id: str = "PM0001",
    created_at: str = "2026-11-05T10:00:00.000Z",
) -> dict[str, Any]:
    resource_type, action = kind.split(".")
    return {
        "id": event_id,
        "created_at": created_at,
        "resource_type": resource_type,
        "action": action,
        "links": {resource_type[:-1]: resource_id},
        "details": {"origin": "gocardless", "cause": action},
        "metadata": {},
    }


def body_of(events: list[dict[str, Any]], webhook_id: str = "WB0000TEST") -> bytes:
    return json.dumps({"events": events, "meta": {"webhook_id": webhook_id}}, separators=(",", ":")).encode()


def deliver(
    client: httpx.Client, url: str, body: bytes, secret: str | None = NEW_SECRET, signature: str | None = None
) -> httpx.Response:
    """POST a body as GoCardless does, signed with `secret` unless an explicit signature is given."""
    headers = {"Content-Type": "application/json", "User-Agent": "gocardless-webhook-service/1.1"}
    if signature is None and secret is not None:
        signature = sign(body, secret)
    if signature is not None:
        headers["Webhook-Signature"] = signature
    return client.post(url, content=body, headers=headers)


def write_scenario(root: Path, payments: int) -> Path:
    """The bundled sample with `payments` extra payments that exist from the start (no `created` action)."""
    shutil.copytree(bundled("small"), root)
    with (root / "gocardless_payments.csv").open("a", encoding="utf-8") as fh:
        for n in range(payments):
            fh.write(f"PMX{n:05d},MD000{1 + n % 8},{1000 + n},GBP,2026-11-10,BULK-{n},Bulk,{{}},,,confirmed\n")
    return root
