"""The firm's own settings, kept in the database (one row): what staff set from Slack. Knows nothing of Slack."""

from __future__ import annotations

import re
from datetime import datetime

from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.services.companies import audit
from bot.store.models import FirmSettings

_CUSTOMER_ID = re.compile(r"\d{1,12}")


class InvalidCustomerIds(ValueError):
    """The Business NXT customer IDs are not digits separated by commas; the message is for people."""


def parse_customer_ids(text: str) -> list[int]:
    """Visma customer IDs as typed ("1234567, 7654321"): digits, separated by commas (or spaces); no repeats."""
    parts = [part for part in re.split(r"[,\s;]+", text.strip()) if part]
    bad = [part for part in parts if not _CUSTOMER_ID.fullmatch(part)]
    if bad:
        raise InvalidCustomerIds(
            f"{bad[0][:20]} is not a customer ID: Visma customer IDs are digits, several separated by commas "
            "(e.g. 1234567, 7654321)."
        )
    return list(dict.fromkeys(int(part) for part in parts))


async def settings(session: AsyncSession) -> FirmSettings:
    """The firm's settings row (made on first use)."""
    row = (await session.exec(select(FirmSettings))).first()
    if row is None:
        row = FirmSettings(firm_name="", nxt_customer_ids="")
        session.add(row)
        await session.flush()
    return row


def customer_ids(row: FirmSettings) -> list[int]:
    """The firm's Business NXT customer IDs."""
    return [int(part) for part in row.nxt_customer_ids.split(",") if part]


async def set_customer_ids(session: AsyncSession, *, ids: list[int], actor: str, now: datetime) -> None:
    """Keep the firm's Business NXT customer IDs (recorded in the audit trail)."""
    row = await settings(session)
    before = customer_ids(row)
    row.nxt_customer_ids = ",".join(str(number) for number in ids)
    session.add(row)
    audit(
        session, actor=actor, company=None, action="firm.nxt_customer_ids", at=now, detail={"from": before, "to": ids}
    )


async def stored_staff_usergroup(session: AsyncSession) -> str | None:
    """The Slack user group staff set in Firm settings, if any (it wins over the STAFF_USERGROUP setting)."""
    return (await session.exec(select(FirmSettings.staff_usergroup_id))).first() or None


async def set_staff_usergroup(session: AsyncSession, *, group: str | None, actor: str, now: datetime) -> bool:
    """Keep the staff's user group (None: back to the STAFF_USERGROUP setting), recorded in the audit trail;
    False when it is the one already kept."""
    row = await settings(session)
    before = row.staff_usergroup_id
    if before == group:
        return False
    row.staff_usergroup_id = group
    session.add(row)
    audit(
        session, actor=actor, company=None, action="firm.staff_usergroup", at=now, detail={"from": before, "to": group}
    )
    return True
