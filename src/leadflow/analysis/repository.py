"""All SQL of the offline tools: the contacts and accounts ``leadflow import`` writes."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from leadflow.models import Account, Lead


async def add_lead(session: AsyncSession, lead: Lead) -> None:
    """Write an imported contact now: its dedup step reads and links it by id."""
    session.add(lead)
    await session.flush()


async def account_to_update(
    session: AsyncSession, domain: str | None, name_key: str
) -> Account | None:
    """The known account with this domain (or, without one, this normalised name), locked
    until the commit so that two imports of one account update it one after the other."""
    query = select(Account).where(
        Account.domain == domain if domain else Account.name_key == name_key
    )
    return (await session.scalars(query.with_for_update())).first()


async def add_account(session: AsyncSession, account: Account) -> None:
    """Write a new account now: a later row of the file may update it."""
    session.add(account)
    await session.flush()
