"""When a company syncs next: nightly by default, spread over the night, more often when its books matter most.

In the days before a VAT deadline and right after a period closes, staff are reconciling and want fresh
data; the rest of the time one run a night keeps the books current without spending Visma's rate budget.
"""

from __future__ import annotations

import hashlib
import random
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

# How long before a VAT deadline, and after a period's end, the busy interval applies.
BEFORE_DEADLINE = timedelta(days=5)
AFTER_PERIOD_END = timedelta(days=5)
# Nightly runs spread over this window from the nightly hour, per company, so they do not start at once.
NIGHT_SPREAD = timedelta(hours=3)

_TERM_MONTHS = {"monthly": 1, "bimonthly": 2, "quarterly": 3, "yearly": 12}


def vat_deadlines(frequency: str, country: str, year: int) -> list[date]:
    """The VAT return deadlines of a year for a reporting frequency (Norway's and Sweden's usual rules)."""
    months = _TERM_MONTHS.get(frequency)
    if months is None:
        return []
    deadlines: list[date] = []
    for term_end in range(months, 13, months):
        # Norway: the 10th of the second month after the term, except the May–June term (31 August) and
        # yearly returns (10 March). Sweden: the 12th of the second month after the term (26th for yearly).
        due_month, due_year = term_end + 2, year
        if due_month > 12:
            due_month, due_year = due_month - 12, year + 1
        if country == "SE":
            deadlines.append(date(due_year, due_month, 26 if months == 12 else 12))
        elif months == 12:
            deadlines.append(date(year + 1, 3, 10))
        elif months == 2 and term_end == 6:
            deadlines.append(date(year, 8, 31))
        else:
            deadlines.append(date(due_year, due_month, 10))
    return deadlines


def period_ends(period_type: str, year: int) -> list[date]:
    """The last days of the reconciliation periods of a year."""
    months = _TERM_MONTHS.get(period_type, 1)
    ends = []
    for month in range(months, 13, months):
        following = date(year + (month == 12), month % 12 + 1, 1)
        ends.append(following - timedelta(days=1))
    return ends


def busy(day: date, *, vat_frequency: str, period_type: str, country: str) -> bool:
    """Whether the day is close before a VAT deadline or just after a period closed."""
    for year in (day.year - 1, day.year):
        for deadline in vat_deadlines(vat_frequency, country, year):
            if timedelta(0) <= deadline - day <= BEFORE_DEADLINE:
                return True
        for end in period_ends(period_type, year) + period_ends(period_type, year + 1):
            if timedelta(0) < day - end <= AFTER_PERIOD_END:
                return True
    return False


def next_sync(
    *,
    now: datetime,
    company_id: int,
    vat_frequency: str,
    period_type: str,
    country: str,
    nightly_hour: int = 2,
    busy_every: timedelta = timedelta(hours=2),
    tz: str = "Europe/Oslo",
) -> datetime:
    """The next run: in `busy_every` on busy days, else in the company's slot of the coming night."""
    zone = ZoneInfo(tz)
    local = now.astimezone(zone)
    if busy(local.date(), vat_frequency=vat_frequency, period_type=period_type, country=country):
        return now + busy_every + timedelta(seconds=random.uniform(0, 300))
    digest = hashlib.sha256(str(company_id).encode()).digest()
    slot = timedelta(seconds=int.from_bytes(digest[:4], "big") % int(NIGHT_SPREAD.total_seconds()))
    night = datetime.combine(local.date(), time(nightly_hour), tzinfo=zone) + slot
    if night <= local + timedelta(minutes=30):
        night = datetime.combine(local.date() + timedelta(days=1), time(nightly_hour), tzinfo=zone) + slot
    return night.astimezone(now.tzinfo) + timedelta(seconds=random.uniform(0, 60))
