"""Rows the store and scenario tests start from, built in one place."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from bot.domain.types import AccountingSystem, CompanyState
from bot.store.models import Company


def company(**overrides: Any) -> Company:
    """An eAccounting company as staff would register it (Nordlys Bakeri AS unless told otherwise)."""
    now = overrides.pop("now", datetime(2026, 11, 25, 12, 0, tzinfo=UTC))
    values: dict[str, Any] = {
        "name": "Nordlys Bakeri AS",
        "org_number": "988077917",
        "country": "NO",
        "system": AccountingSystem.EACCOUNTING,
        "state": CompanyState.HEALTHY,
        "state_since": now,
        "period_type": "monthly",
        "fiscal_year_start_month": 1,
        "reconciliation_start": date(2026, 1, 1),
        "vat_frequency": "bimonthly",
        "responsible_user_id": "U0KARI",
        "requested_by": "U0KARI",
        "created_at": now,
    }
    values.update(overrides)
    return Company(**values)
