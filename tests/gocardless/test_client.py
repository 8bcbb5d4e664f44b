"""The API client (and the official gocardless_pro client) against the GoCardless stand-in over HTTP."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import gocardless_pro
import pytest
from gocardless_pro import errors as gc_errors

from ml_connector_dagster.gocardless.client import (
    GoCardlessAuthError,
    GoCardlessClient,
    GoCardlessNotFound,
    GoCardlessRequestError,
    GoCardlessUnavailable,
    RetryPolicy,
)
from ml_connector_dagster.sandbox.gocardless_api import GoCardlessStandIn, start_gocardless_stand_in

from support.gocardless import FAST_RETRIES, TOKEN, write_scenario

FAST = RetryPolicy(
    max_attempts=5,
    base_delay_seconds=0.01,
    max_delay_seconds=0.05,
    max_total_seconds=10,
    connect_timeout_seconds=2,
    read_timeout_seconds=2,
)


@pytest.fixture
def official(stand_in: GoCardlessStandIn) -> gocardless_pro.Client:
    return gocardless_pro.Client(access_token=TOKEN, base_url=stand_in.url)


@pytest.fixture
def client(stand_in: GoCardlessStandIn) -> GoCardlessClient:
    c = GoCardlessClient(stand_in.url, TOKEN, FAST)
    yield c
    c.close()


@pytest.fixture
def big_stand_in(tmp_path: Path) -> Iterator[GoCardlessStandIn]:
    handle = start_gocardless_stand_in(
        write_scenario(tmp_path / "big", 1100), token=TOKEN, retry_intervals=FAST_RETRIES
    )
    yield handle
    handle.stop()


class RecordingSleep:
    """Sleeps for real and remembers how long each wait was."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)
        time.sleep(seconds)


# -- the official client works unchanged against the stand-in --------------------------------------------


def test_official_client_lists_a_page_with_cursors(official: gocardless_pro.Client) -> None:
    page = official.customers.list(params={"limit": 3})

    assert [c.id for c in page.records] == ["CU0008", "CU0007", "CU0006"]  # newest first
    assert page.after == "CU0006" and page.before is None


def test_official_client_all_follows_cursors_to_the_end(official: gocardless_pro.Client) -> None:
    ids = [c.id for c in official.customers.all(params={"limit": 3})]

    assert sorted(ids) == [f"CU000{n}" for n in range(1, 9)]


def test_official_client_gets_and_updates_a_customer(official: gocardless_pro.Client) -> None:
    updated = official.customers.update("CU0002", params={"metadata": {"sage_customer": "01-BRESLIN"}})

    assert updated.metadata == {"sage_customer": "01-BRESLIN"}
    assert official.customers.get("CU0002").metadata == {"sage_customer": "01-BRESLIN"}
    assert official.customers.get("CU0001").email == "ap@abf.example"


def test_official_client_raises_its_authentication_error_for_a_bad_token(stand_in: GoCardlessStandIn) -> None:
    bad = gocardless_pro.Client(access_token="wrong", base_url=stand_in.url)

    with pytest.raises(gc_errors.AuthenticationError, match="Access token not found") as caught:
        bad.payments.list()

    assert caught.value.code == 401 and caught.value.type == "invalid_api_usage"


def test_official_client_raises_for_an_unknown_resource(official: gocardless_pro.Client) -> None:
    with pytest.raises(gc_errors.InvalidApiUsageError, match="Resource not found") as caught:
        official.payments.get("PM9999")

    assert caught.value.code == 404


def test_official_client_sees_validation_errors_on_metadata(official: gocardless_pro.Client) -> None:
    with pytest.raises(gc_errors.ValidationFailedError, match="at most 3 keys"):
        official.customers.update("CU0001", params={"metadata": dict.fromkeys("abcd", "v")})


# -- our client -------------------------------------------------------------------------------------------


def test_list_payments_reads_every_page_of_500(big_stand_in: GoCardlessStandIn) -> None:
    client = GoCardlessClient(big_stand_in.url, TOKEN, FAST)

    payments = list(client.list_payments())

    assert len(payments) == 1100  # the 16 sample payments are not created until played
    assert len({p["id"] for p in payments}) == 1100
    assert all(isinstance(p["amount"], int) for p in payments)


def test_list_payments_passes_flat_filters(client: GoCardlessClient, stand_in: GoCardlessStandIn) -> None:
    for _ in range(3):
        stand_in.play_step()

    confirmed = list(client.list_payments({"status": "confirmed", "customer": "CU0001"}))

    assert sorted(p["id"] for p in confirmed) == ["PM0001", "PM0002", "PM0003"]


def test_nested_filters_are_refused_before_anything_is_sent(client: GoCardlessClient) -> None:
    with pytest.raises(ValueError, match=r"created_at\[gte\]"):
        list(client.list_payments({"created_at": {"gte": "2026-11-01T00:00:00Z"}}))


def test_resolve_payment_follows_payment_mandate_customer(
    client: GoCardlessClient, stand_in: GoCardlessStandIn
) -> None:
    stand_in.play_step()

    resolved = client.resolve_payment("PM0006")

    assert (resolved.payment["amount"], resolved.payment["currency"]) == (100000, "EUR")
    assert resolved.mandate["id"] == "MD0004"
    assert resolved.customer["company_name"] == "Delta Freight GmbH"


def test_update_customer_metadata_is_the_one_write(client: GoCardlessClient) -> None:
    updated = client.update_customer_metadata("CU0003", {"sage_customer": "01-CAPITAL"})

    assert updated["metadata"] == {"sage_customer": "01-CAPITAL"}
    assert client.get_customer("CU0003")["metadata"] == {"sage_customer": "01-CAPITAL"}


def test_metadata_over_gocardless_limits_is_refused_naming_the_key(client: GoCardlessClient) -> None:
    with pytest.raises(GoCardlessRequestError, match="at most 3"):
        client.update_customer_metadata("CU0003", dict.fromkeys("abcd", "v"))
    with pytest.raises(GoCardlessRequestError, match="'note': value is longer than 500"):
        client.update_customer_metadata("CU0003", {"note": "x" * 501})


def test_a_wrong_token_is_an_auth_error_that_never_shows_the_token(stand_in: GoCardlessStandIn) -> None:
    sleep = RecordingSleep()
    client = GoCardlessClient(stand_in.url, "live_SECRET_TOKEN_123", FAST, sleep=sleep)

    with pytest.raises(GoCardlessAuthError) as caught:
        client.get_payment("PM0001")

    assert caught.value.status == 401 and "access_token_not_found" in str(caught.value)
    assert "live_SECRET_TOKEN_123" not in str(caught.value) + repr(client)
    assert sleep.waits == []  # not retried: retrying cannot fix a token


def test_an_unknown_id_is_not_found(client: GoCardlessClient) -> None:
    with pytest.raises(GoCardlessNotFound, match="GET /payments/PM9999: HTTP 404"):
        client.get_payment("PM9999")


def test_the_creditor_and_refunds_and_payouts_are_readable(
    client: GoCardlessClient, stand_in: GoCardlessStandIn
) -> None:
    while stand_in.play_step():
        pass

    creditors = client.get_creditors()
    refund = client.get_refund("RF0001")
    payouts = list(client.list_payouts())
    items = list(client.payout_items(payouts[0]["id"]))

    assert [c["name"] for c in creditors] == ["ABC Services Ltd"]
    assert (refund["amount"], refund["status"], next(iter(client.list_refunds()))["id"]) == (10000, "paid", "RF0001")
    assert client.get_payout(payouts[0]["id"])["amount"] == payouts[0]["amount"]
    assert items and all(isinstance(i["amount"], str) for i in items)


# -- backoff ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "fault",
    [
        {"kind": "status", "status": 500},
        {"kind": "status", "status": 503},
        {"kind": "html", "status": 502},
        {"kind": "drop"},
        {"kind": "rate_limit", "reset_seconds": 0},
    ],
)
def test_transient_failures_are_retried_with_backoff(fault: dict, stand_in: GoCardlessStandIn) -> None:
    sleep = RecordingSleep()
    client = GoCardlessClient(stand_in.url, TOKEN, FAST, sleep=sleep)
    stand_in.set_faults([{**fault, "count": 2}])

    customer = client.get_customer("CU0001")

    assert customer["id"] == "CU0001"
    assert len(sleep.waits) == 2
    assert stand_in.status()["injected"] == 2


def test_a_429_waits_until_ratelimit_reset(stand_in: GoCardlessStandIn) -> None:
    waits: list[float] = []  # what the client asks to wait, recorded instead of slept (the 429 is answered once)
    client = GoCardlessClient(stand_in.url, TOKEN, FAST, sleep=waits.append)
    stand_in.set_faults([{"kind": "rate_limit", "reset_seconds": 2}])

    customer = client.get_customer("CU0001")

    assert customer["id"] == "CU0001"
    assert len(waits) == 1 and 1.0 < waits[0] <= 3.3  # to the end of the named second, + jitter


def test_the_stand_ins_rate_limit_is_honoured_across_a_listing(big_stand_in: GoCardlessStandIn) -> None:
    sleep = RecordingSleep()
    client = GoCardlessClient(big_stand_in.url, TOKEN, FAST, sleep=sleep)
    big_stand_in.set_faults(rate_limit={"limit": 2, "window_seconds": 1})

    payments = list(client.list_payments())

    assert len(payments) == 1100  # 3 pages, 2 per second: one wait for the window to reset
    assert len(sleep.waits) == 1 and sleep.waits[0] > 0  # what was left of the window


def test_a_slow_answer_times_out_and_is_retried(stand_in: GoCardlessStandIn) -> None:
    policy = RetryPolicy(max_attempts=3, base_delay_seconds=0.01, read_timeout_seconds=0.2)
    client = GoCardlessClient(stand_in.url, TOKEN, policy)
    stand_in.set_faults([{"kind": "delay", "seconds": 0.6}])

    assert client.get_customer("CU0002")["id"] == "CU0002"


def test_attempts_are_bounded_and_the_error_says_what_failed(stand_in: GoCardlessStandIn) -> None:
    client = GoCardlessClient(stand_in.url, TOKEN, FAST)
    stand_in.set_faults([{"kind": "status", "status": 500, "count": 100}])

    with pytest.raises(GoCardlessUnavailable, match=r"GET /payments/PM0001: gave up after 5 attempts; last: HTTP 500"):
        client.get_payment("PM0001")

    assert stand_in.status()["injected"] == 5


def test_total_time_is_bounded_even_when_the_server_asks_to_wait_longer(stand_in: GoCardlessStandIn) -> None:
    policy = RetryPolicy(max_attempts=10, base_delay_seconds=0.01, max_total_seconds=1.0)
    waits: list[float] = []
    client = GoCardlessClient(stand_in.url, TOKEN, policy, sleep=waits.append)
    stand_in.set_faults([{"kind": "rate_limit", "reset_seconds": 30}])

    with pytest.raises(GoCardlessUnavailable, match="would exceed the 1s budget"):
        client.get_customer("CU0001")

    assert waits == []  # it gives up at once instead of waiting 30 s it does not have


def test_a_client_without_a_token_says_which_setting_is_missing(settings) -> None:
    from ml_connector_dagster.settings import SettingsError

    with pytest.raises(SettingsError, match="ML_CONNECTOR_GOCARDLESS_ACCESS_TOKEN"):
        GoCardlessClient.from_settings(settings.gocardless())


def test_a_5xx_backs_off_exponentially_even_when_ratelimit_headers_are_present(stand_in: GoCardlessStandIn) -> None:
    sleep = RecordingSleep()
    client = GoCardlessClient(stand_in.url, TOKEN, FAST, sleep=sleep)
    stand_in.set_faults([{"kind": "status", "status": 500}], rate_limit={"limit": 1000, "window_seconds": 60})

    client.get_customer("CU0001")

    assert len(sleep.waits) == 1 and sleep.waits[0] < 0.05  # not "until the rate-limit window resets"
