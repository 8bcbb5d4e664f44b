"""`ml-connector receiver`: serve the GoCardless webhook endpoint until stopped."""

from __future__ import annotations

import logging
import sys

import click

from ..settings import SettingsError
from .common import settings_or_exit, store_or_exit


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on (0.0.0.0 for all).")
@click.option("--port", type=click.IntRange(1, 65535), default=8000, show_default=True, help="Port to listen on.")
def receiver(host: str, port: int) -> None:
    """Receive GoCardless webhooks at POST /webhooks/gocardless (health check: GET /healthz).

    Verifies each delivery's signature, stores whitelisted events in the inbox and answers; Dagster
    processes them later. Logs one JSON line per delivery on stderr. Slow clients are cut off and
    connections capped by ML_CONNECTOR_HTTP_HEADER_TIMEOUT_SECONDS, ..._BODY_TIMEOUT_SECONDS and
    ML_CONNECTOR_HTTP_MAX_CONNECTIONS.
    """
    from ..gocardless.receiver import WEBHOOK_PATH, create_app
    from ..httpserve import ServerLimits, run_forever

    settings = settings_or_exit()
    store = store_or_exit(settings)
    try:
        webhooks = settings.webhooks()
    except SettingsError as exc:
        raise click.ClickException(str(exc)) from None
    app = create_app(webhooks, store)
    _log_json_lines()
    click.echo(
        f"Receiving GoCardless webhooks at http://{host}:{port}{WEBHOOK_PATH} "
        f"({len(webhooks.secrets)} secret(s), "
        f"{len(webhooks.event_whitelist)} whitelisted event types). Ctrl-C stops.",
        err=True,
    )
    run_forever(app, host, port, limits=ServerLimits.from_settings(settings))


def _log_json_lines() -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    logger = logging.getLogger("ml_connector_dagster.gocardless.receiver")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
