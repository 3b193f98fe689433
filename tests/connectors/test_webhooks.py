"""Outbound webhooks: signed per Standard Webhooks, refused to private addresses."""

from __future__ import annotations

import pytest
import standardwebhooks

from leadflow.config.connectors import Webhook
from leadflow.connectors.webhooks import check_destination, deliver
from leadflow.stage import PermanentFailure, RetryableFailure
from tests.receivers import Receiver

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


def endpoint(url: str, *, allow_private: bool = True) -> Webhook:
    return Webhook(
        url=url,
        secret_env="TEST_WEBHOOK_SECRET",
        events=["lead.routed"],
        allow_private=allow_private,
    )


@pytest.fixture(autouse=True)
def secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEST_WEBHOOK_SECRET", SECRET)


async def test_a_delivery_is_signed_so_the_receiver_can_verify_it(receiver: Receiver) -> None:
    status = await deliver(endpoint(receiver.http_url), "msg_1", "lead.routed", {"lead_id": "L1"})

    ((headers, body),) = receiver.raw
    verified = standardwebhooks.Webhook(SECRET).verify(body, headers)
    assert status == 200
    assert headers["webhook-id"] == "msg_1"
    assert verified["type"] == "lead.routed"
    assert verified["data"] == {"lead_id": "L1"}
    with pytest.raises(standardwebhooks.WebhookVerificationError):
        standardwebhooks.Webhook("whsec_" + "A" * 32).verify(body, headers)


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1/x", "http://10.1.2.3/x", "http://169.254.169.254/x", "http://[::1]/x"]
)
async def test_a_private_address_is_refused_unless_allowed(url: str) -> None:
    with pytest.raises(PermanentFailure, match="non-public address"):
        await check_destination(url, allow_private=False)
    await check_destination(url, allow_private=True)


async def test_localhost_is_refused_by_what_it_resolves_to(receiver: Receiver) -> None:
    url = receiver.http_url.replace("127.0.0.1", "localhost")

    with pytest.raises(PermanentFailure, match="allow_private: true"):
        await deliver(endpoint(url, allow_private=False), "msg_2", "lead.routed", {})

    assert receiver.raw == []


async def test_a_receiver_that_fails_is_a_retryable_failure(receiver: Receiver) -> None:
    receiver.status = 500

    with pytest.raises(RetryableFailure, match="HTTP 500"):
        await deliver(endpoint(receiver.http_url), "msg_3", "lead.routed", {})
    receiver.status = 200
    assert await deliver(endpoint(receiver.http_url), "msg_3", "lead.routed", {}) == 200

    assert [h["webhook-id"] for h, _ in receiver.raw] == ["msg_3", "msg_3"]
