"""App Home: counts and the companies that need a person."""

from __future__ import annotations

from collections import Counter
from typing import Any

from slack_bolt.context.async_context import AsyncBoltContext
from slack_sdk.web.async_client import AsyncWebClient
from sqlmodel import col, select

from bot.domain.types import CompanyState
from bot.runtime import Deps
from bot.store.models import Company
from commands.home.views import HomeRow, guest_view, home_view


async def home_opened(event: dict[str, Any], context: AsyncBoltContext, client: AsyncWebClient) -> None:
    """Publish the home tab for the user who opened it."""
    if event.get("tab") != "home":
        return
    deps: Deps = context["deps"]
    if not context.get("is_staff", False):
        await client.views_publish(user_id=event["user"], view=guest_view())
        return
    async with deps.store.session() as session:
        companies = (await session.exec(select(Company).order_by(col(Company.name)))).all()
    rows = [HomeRow(company.name, CompanyState(company.state), None) for company in companies]
    counts = Counter(row.state for row in rows)
    await client.views_publish(user_id=event["user"], view=home_view(rows, counts))
