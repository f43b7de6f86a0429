"""When companies sync: nightly in their own slot, more often around VAT deadlines and period closes."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from bot.domain.schedule import busy, next_sync, period_ends, vat_deadlines
from bot.sync.policy import failure_visible, retry_after_failure

OSLO = ZoneInfo("Europe/Oslo")


def test_norwegian_bimonthly_vat_deadlines():
    assert vat_deadlines("bimonthly", "NO", 2026) == [
        date(2026, 4, 10),
        date(2026, 6, 10),
        date(2026, 8, 31),
        date(2026, 10, 10),
        date(2026, 12, 10),
        date(2027, 2, 10),
    ]


def test_swedish_quarterly_and_no_vat():
    assert vat_deadlines("quarterly", "SE", 2026)[0] == date(2026, 5, 12)
    assert vat_deadlines("none", "NO", 2026) == []


def test_period_ends():
    assert period_ends("quarterly", 2026) == [
        date(2026, 3, 31),
        date(2026, 6, 30),
        date(2026, 9, 30),
        date(2026, 12, 31),
    ]


@pytest.mark.parametrize(
    ("day", "expected"),
    [
        (date(2026, 4, 7), True),  # three days before the 10 April deadline
        (date(2026, 4, 11), False),
        (date(2026, 5, 2), True),  # two days after April closed (monthly periods)
        (date(2026, 5, 20), False),
    ],
)
def test_busy_days(day, expected):
    assert busy(day, vat_frequency="bimonthly", period_type="monthly", country="NO") is expected


def test_a_quiet_day_syncs_in_the_companys_own_slot_tonight():
    now = datetime(2026, 5, 20, 12, 0, tzinfo=UTC)
    first = next_sync(now=now, company_id=1, vat_frequency="bimonthly", period_type="monthly", country="NO")
    again = next_sync(now=now, company_id=1, vat_frequency="bimonthly", period_type="monthly", country="NO")
    local = first.astimezone(OSLO)
    assert local.date() == date(2026, 5, 21)
    assert 2 <= local.hour < 5
    assert abs(first - again) <= timedelta(minutes=1)  # the slot is the company's; only a minute of jitter
    slots = {
        next_sync(now=now, company_id=n, vat_frequency="bimonthly", period_type="monthly", country="NO")
        .astimezone(OSLO)
        .hour
        for n in range(50)
    }
    assert {2, 3, 4} <= slots <= {2, 3, 4, 5}  # spread over the three night hours (plus a minute of jitter)


def test_a_busy_day_syncs_every_two_hours():
    now = datetime(2026, 4, 8, 12, 0, tzinfo=UTC)
    upcoming = next_sync(now=now, company_id=7, vat_frequency="bimonthly", period_type="monthly", country="NO")
    assert timedelta(hours=2) <= upcoming - now <= timedelta(hours=2, minutes=5)


def test_quiet_failures_become_visible_after_three_runs_or_an_hour():
    now = datetime(2026, 5, 20, 12, 0, tzinfo=UTC)
    assert not failure_visible(count=2, since=now - timedelta(minutes=30), now=now)
    assert failure_visible(count=3, since=now - timedelta(minutes=30), now=now)
    assert failure_visible(count=1, since=now - timedelta(hours=1), now=now)
    assert not failure_visible(count=5, since=None, now=now)


def test_retries_after_failures_back_off_to_hourly():
    now = datetime(2026, 5, 20, 12, 0, tzinfo=UTC)
    assert timedelta(minutes=10) <= retry_after_failure(count=1, now=now) - now <= timedelta(minutes=11)
    assert timedelta(minutes=20) <= retry_after_failure(count=2, now=now) - now <= timedelta(minutes=21)
    assert timedelta(hours=1) <= retry_after_failure(count=9, now=now) - now <= timedelta(hours=1, minutes=1)
