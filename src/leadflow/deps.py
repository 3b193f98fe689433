"""Typed FastAPI dependencies, and what the endpoints read of a request, shared by them."""

from __future__ import annotations

import hmac
import ipaddress
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.ext.asyncio import AsyncSession

from leadflow.db import transaction
from leadflow.errors import Unauthorized
from leadflow.runtime import Runtime


def client_ip(request: Request) -> str | None:
    """The client's address, when it is one (a forwarded header may carry anything)."""
    host = request.client.host if request.client else None
    try:
        return str(ipaddress.ip_address(host)) if host else None
    except ValueError:
        return None


async def get_runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


async def get_session(runtime: RuntimeDep) -> AsyncIterator[AsyncSession]:
    """A session per request, committed when the endpoint returns without error.

    Scoped to the endpoint function, so the commit happens *before* the answer
    is sent: a 2xx always means the change is saved."""
    async with transaction(runtime.sessions) as session:
        yield session


SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]

bearer = HTTPBearer(auto_error=False, description="The admin token (LEADFLOW_ADMIN_TOKEN).")


def is_admin(request: Request, credentials: HTTPAuthorizationCredentials | None) -> bool:
    expected: str = request.app.state.admin_token
    return credentials is not None and hmac.compare_digest(
        credentials.credentials.encode(), expected.encode()
    )


async def require_admin(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> None:
    if not is_admin(request, credentials):
        raise Unauthorized()


AdminDep = Depends(require_admin)
