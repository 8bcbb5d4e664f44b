"""The Dagster UI of a running `ml-connector dev`, seen in a real browser (Debian's headless Chromium).

A newcomer's path, end to end: start `ml-connector dev`, advance the scenario with `ml-connector dev step`,
let the daemon's inbox sensor launch a run, and see the assets and a successful run in the UI. Then an
operator's: read the review queue's table on its asset page, and launch a review action from the Launchpad
with a wrong invoice, which fails once (no retry) with a message saying what is wrong; and backfill a range
of days of `gocardless/payments` from its asset page, in one run.

Runs in the default test run. Outside CI it is skipped only when /usr/bin/chromium is missing
(`bash .ci/ui-deps.sh` installs it); in CI (CI set) it always runs.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
import requests
from click.testing import CliRunner

from ml_connector_dagster.cli import main

from support.dev_process import DevProcess
from support.waiting import wait_for

CHROMIUM = Path("/usr/bin/chromium")
if not CHROMIUM.exists() and not os.environ.get("CI"):
    pytest.skip(
        "Debian's chromium is not installed (/usr/bin/chromium); `bash .ci/ui-deps.sh` installs it",
        allow_module_level=True,
    )
if not os.environ.get("CI"):
    pytest.importorskip("playwright", reason="the playwright package (Python) is not installed")
from playwright.sync_api import Browser, Locator, Page, expect, sync_playwright  # noqa: E402

pytestmark = pytest.mark.slow

# The flags this machine needs: no sandbox as root, no GPU, and no calls home (a closed network refuses them).
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
STEPS_TO_CONFIRMED = 3  # the bundled sample: created, submitted, then confirmed (collectable) payments
RUN_TIMEOUT = 240.0
UI_TIMEOUT_MS = 30_000
#: A payment of the bundled sample held at step 3 (two open invoices of its amount, on_tie = hold).
HELD, HELD_REASON, HELD_EXPLANATION = "PM0004", "ambiguous_match", "exact amount: 2 invoices of 300.00"
HELD_CANDIDATES = "0100040, 0100041"
REVIEW_QUEUE = ["reconciliation", "review_queue"]
#: The bundled sample's payments, all created on the day it is played (step 1), the last day of the range.
SAMPLE_PAYMENTS = 40
BACKFILL_DAYS = 3
SCREENSHOT_COPY = os.environ.get("ML_CONNECTOR_UI_SCREENSHOT")  # also save the screenshot here (for docs)


@pytest.fixture(scope="module")
def dev(dev_stack: DevProcess) -> DevProcess:
    """The session's `ml-connector dev` (tests/conftest.py), with Dagster's one-time "join the community" dialog
    dismissed so it does not cover the pages."""
    dev_stack.graphql("mutation { setNuxSeen }")
    return dev_stack


@pytest.fixture(scope="module")
def successful_run(dev: DevProcess) -> dict[str, Any]:
    """Advance the scenario to its confirmed payments (other tests may have played steps already), then wait
    (bounded) for the inbox run to succeed.

    Schedules (the Sage poll, the posting safety net) may launch runs of their own meanwhile; the run that
    counts is the one the inbox sensor launched for the webhooks."""
    status = requests.get(dev.env()["ML_CONNECTOR_GOCARDLESS_API_URL"] + "/_sandbox/status", timeout=5).json()
    for _ in range(STEPS_TO_CONFIRMED - status["step"]):
        result = CliRunner().invoke(main, ["dev", "step", "--home", str(dev.home)])
        assert result.exit_code == 0, result.output
    return wait_for(
        lambda: next(
            (r for r in dev.runs() if r["status"] == "SUCCESS" and r["jobName"] == "gocardless_inbox_job"), None
        ),
        RUN_TIMEOUT,
        "a successful gocardless_inbox_job run",
        interval=2,
        on_timeout=lambda: f"runs: {dev.runs()}\n{dev.tail()}",
    )


@pytest.fixture(scope="module")
def held_item(dev: DevProcess, successful_run: dict[str, Any]) -> dict[str, Any]:
    """HELD's row of the review queue, once the queue's latest materialization lists it (the steps' webhooks
    may take more than one inbox run, each of which records the queue)."""
    return wait_for(
        lambda: next((r for r in dev.latest_table(REVIEW_QUEUE, "open_items") if r["payment"] == HELD), None),
        RUN_TIMEOUT,
        f"{HELD} in the latest materialization of reconciliation/review_queue",
        interval=1,
        on_timeout=lambda: f"queue: {dev.latest_table(REVIEW_QUEUE, 'open_items')}\nruns: {dev.runs()}",
    )


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1440, "height": 900})
    page = context.new_page()
    page.set_default_timeout(UI_TIMEOUT_MS)
    try:
        yield page
    finally:
        context.close()


def screenshot(page: Page, path: Path) -> Path:
    page.screenshot(path=str(path), full_page=False)
    assert path.stat().st_size > 10_000, "the screenshot is suspiciously small (a blank page?)"
    return path


def test_the_catalog_lists_the_connectors_assets(dev: DevProcess, page: Page, tmp_path: Path) -> None:
    page.goto(dev.url + "/assets")

    for key in ("gocardless / payments", "reconciliation / payment_matches", "sage100 / ar_invoices"):
        expect(page.get_by_text(key, exact=True).first).to_be_visible()
    screenshot(page, tmp_path / "catalog.png")


def test_the_lineage_shows_gocardless_and_sage_feeding_reconciliation(
    dev: DevProcess, page: Page, tmp_path: Path
) -> None:
    page.goto(dev.url + "/asset-groups")

    for group in ("gocardless", "sage100", "reconciliation"):
        expect(page.get_by_text(group, exact=True).first).to_be_visible()
    screenshot(page, tmp_path / "lineage.png")


def test_a_step_of_the_scenario_makes_the_inbox_sensor_launch_a_run(
    dev: DevProcess, successful_run: dict[str, Any]
) -> None:
    launched = [r for r in dev.runs() if r["jobName"] == "gocardless_inbox_job"]

    assert launched, f"no gocardless_inbox_job run; runs: {dev.runs()}"
    assert successful_run["status"] == "SUCCESS"


def test_the_runs_page_shows_the_successful_run(
    dev: DevProcess, successful_run: dict[str, Any], page: Page, tmp_path: Path
) -> None:
    short_id = successful_run["runId"][:8]

    page.goto(dev.url + "/runs?" + urlencode({"q[]": "status:SUCCESS"}))
    expect(page.get_by_role("link", name=f"run {short_id}")).to_be_visible()
    page.goto(dev.url + "/runs")
    expect(page.get_by_role("link", name=f"run {short_id}")).to_be_visible()
    expect(page.get_by_text("Success", exact=True).first).to_be_visible()

    shot = screenshot(page, tmp_path / "dagster-ui.png")
    if SCREENSHOT_COPY:
        Path(SCREENSHOT_COPY).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(shot, SCREENSHOT_COPY)


def test_the_run_page_shows_the_run_succeeded(dev: DevProcess, successful_run: dict[str, Any], page: Page) -> None:
    page.goto(f"{dev.url}/runs/{successful_run['runId']}")

    expect(page.get_by_text(successful_run["runId"][:8], exact=True).first).to_be_visible()
    expect(page.get_by_text("Success", exact=True).first).to_be_visible()


def test_the_review_queue_asset_shows_the_held_payments_table(
    dev: DevProcess, held_item: dict[str, Any], page: Page, tmp_path: Path
) -> None:
    page.goto(dev.url + "/assets/" + "/".join(REVIEW_QUEUE))

    row = innermost_rows(page).filter(has=page.get_by_role("cell", name=HELD, exact=True))
    expect(row).to_have_count(1)
    for shown in (HELD_REASON, HELD_EXPLANATION, HELD_CANDIDATES):
        expect(row).to_contain_text(shown)
    header = innermost_rows(page).filter(has_text="candidates").filter(has_text="explanation").last
    expect(header).to_contain_text("payment")
    row.scroll_into_view_if_needed()
    screenshot(page, tmp_path / "review-queue.png")


def innermost_rows(page: Page) -> Locator:
    """Table rows without a table inside (a table metadata value is a table in a row of the metadata table)."""
    return page.locator("tr").filter(has_not=page.locator("tr"))


def test_a_review_apply_with_a_wrong_invoice_fails_once_saying_why(
    dev: DevProcess, held_item: dict[str, Any], page: Page, tmp_path: Path
) -> None:
    config = (
        f"ops: {{review_apply_op: {{config: {{item_id: {held_item['item']}, "
        'invoices: ["0999999"], operator: "erin"}}}'
    )

    run_id = launch_from_the_launchpad(page, dev.url, "review_apply", config)

    expect(page.get_by_text("Failure", exact=True).first).to_be_visible(timeout=RUN_TIMEOUT * 1000)
    expect(page.get_by_text("invoice 0999999 is not an open invoice of this customer in Sage").first).to_be_visible()
    screenshot(page, tmp_path / "review-apply-failed.png")
    decided = wait_for(  # the instance records whether it retries the run; after "false" it never does
        lambda: (run := dev.run(run_id))["tags"].get("dagster/will_retry") and run,
        RUN_TIMEOUT,
        "the retry decision on the failed review_apply run",
        on_timeout=lambda: str(dev.run(run_id)),
    )
    assert (decided["status"], decided["tags"]["dagster/will_retry"]) == ("FAILURE", "false")
    page.goto(dev.url + "/runs?" + urlencode({"q[]": "job:review_apply"}))
    expect(page.get_by_role("link", name=re.compile(r"^run [0-9a-f]{8}$"))).to_have_count(1)
    link = page.get_by_role("link", name=f"run {run_id[:8]}")
    row = page.locator("div").filter(has=link).filter(has_text="Failure").last  # the innermost: the run's row
    expect(row).to_contain_text("review_apply")
    screenshot(page, tmp_path / "review-apply-runs.png")


def launch_from_the_launchpad(page: Page, url: str, job: str, config: str, keep_prefilled: bool = False) -> str:
    """Jobs page -> the job -> Launchpad, the run config typed in place of what Dagster pre-fills (or after it),
    Launch Run: the run's id.

    The text is inserted (not typed key by key) so the editor's bracket and quote completion leaves it as is."""
    page.goto(url + "/jobs")
    page.get_by_text(job, exact=True).first.click()
    page.get_by_role("tab", name="Launchpad").click()
    editor = page.locator(".CodeMirror").first
    expect(editor).to_contain_text("resources:")  # the pre-filled config has loaded: it would overwrite earlier text
    editor.click()
    page.keyboard.press("Control+End" if keep_prefilled else "Control+A")
    page.keyboard.insert_text("\n" + config if keep_prefilled else config)
    if not keep_prefilled:
        expect(editor).not_to_contain_text("resources:")
    expect(page.get_by_text("No errors", exact=True)).to_be_visible()
    page.get_by_role("button", name="Launch Run").click()
    page.wait_for_url(re.compile(r"/runs/[0-9a-f-]{36}$"))
    return page.url.rsplit("/", 1)[-1]


def test_a_backfill_of_a_range_of_days_from_the_asset_page_materializes_them_in_one_run(
    dev: DevProcess, successful_run: dict[str, Any], page: Page, tmp_path: Path
) -> None:
    today = datetime.now(UTC).date()  # the last partition (end_offset=1); go-live is a month or more before it
    days = [str(today - timedelta(days=n)) for n in range(BACKFILL_DAYS)]  # newest first
    page.goto(dev.url + "/assets/gocardless/payments")

    page.get_by_role("button", name="Materialize…").click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_role("textbox").fill(f"[{days[-1]}...{days[0]}]")
    dialog.get_by_role("textbox").press("Enter")
    expect(dialog).to_contain_text(f"Partition selection{BACKFILL_DAYS} partitions")
    dialog.get_by_role("button", name="Launch backfill").click()
    created = page.get_by_text(re.compile(r"^Created backfill [a-z]{8}$"))
    expect(created).to_be_visible()
    backfill_id = (created.text_content() or "").rsplit(" ", 1)[-1]

    done = wait_for(
        lambda: (b := dev.backfill(backfill_id))["status"] not in ("REQUESTED", "CANCELING") and b,
        RUN_TIMEOUT,
        f"backfill {backfill_id} to end",
        interval=1,
        on_timeout=lambda: f"{dev.backfill(backfill_id)}\n{dev.tail()}",
    )
    assert (done["status"], sorted(done["partitionNames"])) == ("COMPLETED_SUCCESS", sorted(days))
    assert [r["status"] for r in done["runs"]] == ["SUCCESS"], "single-run backfill policy: one run for the range"
    page.goto(dev.url + "/overview/backfills")
    row = page.locator("div").filter(has=page.get_by_role("link", name=backfill_id)).filter(has_text="Success")
    expect(row.last).to_contain_text(f"{BACKFILL_DAYS} partitions")
    page.goto(f"{dev.url}/runs/b/{backfill_id}")
    expect(page.get_by_text("100% completed")).to_be_visible()
    screenshot(page, tmp_path / "backfill.png")
    page.goto(dev.url + "/assets/gocardless/payments?" + urlencode({"view": "partitions", "partition": days[0]}))
    expect(page.get_by_text(f"Materialized ({BACKFILL_DAYS})")).to_be_visible()
    expect(page.get_by_text("Materialized", exact=True)).to_be_visible()  # today's partition, with its payments
    expect(innermost_rows(page).filter(has_text="dagster/row_count")).to_contain_text(str(SAMPLE_PAYMENTS))
    screenshot(page, tmp_path / "backfill-partitions.png")


def test_a_review_job_launched_with_the_launchpads_prefilled_resources_reads_the_real_settings(
    dev: DevProcess, successful_run: dict[str, Any], page: Page, tmp_path: Path
) -> None:
    config = 'ops: {review_retry_op: {config: {item_id: 999999, operator: "erin"}}}'

    launch_from_the_launchpad(page, dev.url, "review_retry", config, keep_prefilled=True)

    expect(page.get_by_text("Failure", exact=True).first).to_be_visible(timeout=RUN_TIMEOUT * 1000)
    screenshot(page, tmp_path / "review-retry-prefilled.png")
    expect(page.get_by_text("there is no review item 999999").first).to_be_visible()
