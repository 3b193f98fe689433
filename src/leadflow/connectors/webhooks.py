"""Outbound webhooks per Standard Webhooks 1.0: signed, and never to a private address."""

from __future__ import annotations

import asyncio
import ipaddress
import json
import socket
from collections.abc import Mapping
from datetime import UTC, datetime
from urllib.parse import urlsplit

import httpx
import standardwebhooks

from leadflow.config.connectors import Webhook
from leadflow.stage import PermanentFailure, RetryableFailure

TIMEOUT_SECONDS = 10.0


async def check_destination(url: str, *, allow_private: bool) -> None:
    """Refuse (PermanentFailure) a URL whose host resolves to a loopback, private,
    link-local or otherwise non-public address: every address counts, at send time."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise RetryableFailure(f"webhook host {host} does not resolve: {exc}") from exc
    if allow_private:
        return
    for info in infos:
        address = ipaddress.ip_address(str(info[4][0]).split("%")[0])
        if not address.is_global:
            raise PermanentFailure(
                f"webhook {url} refused: {host} resolves to the non-public address {address} "
                "(set allow_private: true to allow it)"
            )


def signed_headers(secret: str, msg_id: str, body: str, at: datetime) -> dict[str, str]:
    """The Standard Webhooks headers of ``body``: id, timestamp and signature."""
    signature = standardwebhooks.Webhook(secret).sign(msg_id, at, body)
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": signature,
        "content-type": "application/json",
    }


async def deliver(endpoint: Webhook, msg_id: str, event: str, data: Mapping[str, object]) -> int:
    """POST the event to the endpoint, signed; the receiver's status on success. A 5xx,
    429 or network error is a RetryableFailure, another 4xx a PermanentFailure."""
    secret = endpoint.secret()
    if secret is None:
        raise PermanentFailure(f"webhook secret {endpoint.secret_env} is not set")
    await check_destination(endpoint.url, allow_private=endpoint.allow_private)
    at = datetime.now(UTC)
    body = json.dumps({"type": event, "timestamp": at.isoformat(), "data": dict(data)})
    headers = signed_headers(secret, msg_id, body, at)
    try:
        async with httpx.AsyncClient(timeout=TIMEOUT_SECONDS, follow_redirects=False) as http:
            response = await http.post(endpoint.url, content=body, headers=headers)
    except httpx.HTTPError as exc:
        raise RetryableFailure(f"webhook {endpoint.url}: {exc!r}") from exc
    status = response.status_code
    if status >= 500 or status == 429:
        raise RetryableFailure(f"webhook {endpoint.url} answered HTTP {status}")
    if status >= 400:
        raise PermanentFailure(f"webhook {endpoint.url} answered HTTP {status}")
    return status
