"""The daily digest's facts (read from a migrated store, SQLite and PostgreSQL), its blocks and its chart."""

from __future__ import annotations

import io
import itertools
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from PIL import Image
from pydantic import ValidationError

from bot.domain.problems import consent_revoked
from bot.domain.types import ApprovalStatus, CompanyState, SyncStatus
from bot.services import digest
from bot.services.digest import DayHealth, Digest, ExpiringLink, OpenProblem, StaleCompany
from bot.services.outbox import Kind
from bot.store.models import ApprovalRequest, Company, SlackMessage, SyncRun
from commands.digest import chart, views
from tests.conftest import make_settings
from tests.factories import company

OSLO = ZoneInfo("Europe/Oslo")
TODAY = date(2026, 11, 24)


def local(day: date, hour: int, minute: int = 0) -> datetime:
    """A moment on the firm's clock (Oslo), as the aware datetime the store keeps."""
    return datetime.combine(day, time(hour, minute), tzinfo=OSLO).astimezone(UTC)


NOW = local(TODAY, 8, 30)
YESTERDAY = TODAY - timedelta(days=1)


ORG_NUMBERS = itertools.count(900000001)


async def add(session, **values) -> Company:
    row = company(org_number=str(next(ORG_NUMBERS)), now=NOW, **values)
    session.add(row)
    await session.flush()
    return row


def link(company_id: int, *, expires_at: datetime, **values) -> ApprovalRequest:
    fields = {
        "company_id": company_id,
        "token_hash": f"hash-{company_id}-{expires_at.isoformat()}",
        "requested_by": "U0KARI",
        "requested_by_name": "Kari Nordmann",
        "approver_user_id": "U0OLA",
        "created_at": expires_at - timedelta(days=7),
        "expires_at": expires_at,
        **values,
    }
    return ApprovalRequest(**fields)


def run(company_id: int, *, finished_at: datetime | None, status: SyncStatus) -> SyncRun:
    started = (finished_at or NOW) - timedelta(minutes=3)
    return SyncRun(company_id=company_id, started_at=started, finished_at=finished_at, status=status)


# --- the settings ---------------------------------------------------------------------------------------------


def test_digest_time_is_a_local_time_of_day():
    assert make_settings().digest_time == time(8, 0)
    assert make_settings().digest_enabled is True
    assert make_settings(digest_time="7:05").digest_time == time(7, 5)
    assert make_settings(digest_time=" 23:59 ").digest_time == time(23, 59)
    assert make_settings(digest_enabled="false").digest_enabled is False
    for wrong in ("24:00", "08:60", "0800", "28800", "8", "08:00:00", "eight", ""):
        with pytest.raises(ValidationError, match="HH:MM"):
            make_settings(digest_time=wrong)


# --- the stale line -------------------------------------------------------------------------------------------


def test_the_stale_line_is_the_start_of_the_nightly_window_before_the_last_one_that_closed():
    # 08:30: last night's window (02:00–05:00) has closed, so stale is "nothing since 02:00 yesterday".
    assert digest.stale_line(NOW, tz="Europe/Oslo", nightly_hour=2) == local(YESTERDAY, 2)
    # 03:00: tonight's window is still open; the last closed one started yesterday, the one before it the day before.
    assert digest.stale_line(local(TODAY, 3), tz="Europe/Oslo", nightly_hour=2) == local(TODAY - timedelta(days=2), 2)
    # A window from 22:00 that runs past midnight, looked at while it runs.
    at = local(TODAY, 0, 30)
    assert digest.stale_line(at, tz="Europe/Oslo", nightly_hour=22) == local(TODAY - timedelta(days=3), 22)


# --- the facts from the store ---------------------------------------------------------------------------------


async def test_counts_stale_companies_expiring_links_and_open_problems(store):
    async with store.session() as session:
        fresh = await add(session, name="Aurora AS", last_sync_at=local(TODAY, 2, 40))
        missed_one_night = await add(session, name="Cirrus AS", last_sync_at=local(YESTERDAY, 3, 10))
        missed_two = await add(session, name="Bris AS", last_sync_at=local(TODAY - timedelta(days=2), 3, 5))
        never = await add(session, name="Dønn AS", state=CompanyState.CONNECTED, state_since=NOW - timedelta(days=4))
        await add(session, name="Elv AS", state=CompanyState.CONNECTED, state_since=NOW - timedelta(hours=1))
        broken = await add(
            session,
            name="Fjell AS",
            state=CompanyState.PERMISSION_ERROR,
            last_sync_at=NOW - timedelta(days=14),
            responsible_user_id="U0PER",
        )
        await add(session, name="Gran AS", state=CompanyState.DEACTIVATED, last_sync_at=NOW - timedelta(days=30))
        soon = await add(session, name="Hav AS", state=CompanyState.AWAITING_APPROVAL)
        later = await add(session, name="Is AS", state=CompanyState.AWAITING_APPROVAL)
        lapsed = await add(session, name="Jord AS", state=CompanyState.AWAITING_APPROVAL)
        by_email = await add(session, name="Kyst AS", state=CompanyState.AWAITING_APPROVAL)
        session.add_all(
            [
                link(soon.id, expires_at=NOW + timedelta(hours=20)),
                link(later.id, expires_at=NOW + timedelta(hours=72)),
                link(lapsed.id, expires_at=NOW - timedelta(minutes=5)),  # not yet marked expired by the tick
                link(by_email.id, expires_at=NOW + timedelta(hours=47), approver_user_id=None, approver_email="a@k.no"),
                link(fresh.id, expires_at=NOW + timedelta(hours=10), status=ApprovalStatus.COMPLETED),
            ]
        )
        problem = consent_revoked(company="Fjell AS")
        open_alert = {"problem": problem.facts(), "code": problem.code, "count": 3}
        session.add_all(
            [
                SlackMessage(
                    kind=Kind.ALERT,
                    company_id=broken.id,
                    facts=open_alert,
                    next_attempt_at=NOW,
                    created_at=NOW - timedelta(days=2),
                ),
                SlackMessage(
                    kind=Kind.ALERT,
                    company_id=missed_one_night.id,
                    facts=open_alert,
                    next_attempt_at=NOW,
                    created_at=NOW - timedelta(days=5),
                    closed_at=NOW - timedelta(days=4),
                ),
            ]
        )
        await session.commit()

        facts = await digest.gather(session, day=TODAY, now=NOW, tz="Europe/Oslo", nightly_hour=2)

    assert facts.by_state == {
        CompanyState.HEALTHY: 3,
        CompanyState.CONNECTED: 2,
        CompanyState.PERMISSION_ERROR: 1,
        CompanyState.DEACTIVATED: 1,
        CompanyState.AWAITING_APPROVAL: 4,
    }
    assert facts.companies == 11
    assert facts.stale_before == local(YESTERDAY, 2)
    # Never synced first, then the oldest; one missed night, the permission error and the deactivated one are not.
    assert [(s.name, s.last_sync_at) for s in facts.stale] == [
        ("Dønn AS", None),
        ("Bris AS", missed_two.last_sync_at),
    ]
    assert facts.stale[0].connected_since == never.state_since
    assert [(e.company_name, e.approver_user_id, e.approver_email) for e in facts.expiring] == [
        ("Hav AS", "U0OLA", None),
        ("Kyst AS", None, "a@k.no"),
    ]
    assert facts.expiring[0].requested_by == "U0KARI"
    [open_problem] = facts.problems
    assert (open_problem.company_name, open_problem.count, open_problem.responsible_user_id) == ("Fjell AS", 3, "U0PER")
    assert open_problem.summary == problem.summary
    assert open_problem.since == NOW - timedelta(days=2)


async def test_sync_health_counts_companies_per_local_day_with_empty_days(store):
    async with store.session() as session:
        a = await add(session, name="Aurora AS")
        b = await add(session, name="Bris AS")
        c = await add(session, name="Cirrus AS")
        d = await add(session, name="Dønn AS")
        first = TODAY - timedelta(days=13)
        session.add_all(
            [
                # Today until now: A fine; B failed twice (one company, once); C failed, then synced (OK).
                run(a.id, finished_at=local(TODAY, 2, 30), status=SyncStatus.OK),
                run(b.id, finished_at=local(TODAY, 2, 40), status=SyncStatus.FAILED),
                run(b.id, finished_at=local(TODAY, 3, 40), status=SyncStatus.FAILED),
                run(c.id, finished_at=local(TODAY, 2, 10), status=SyncStatus.FAILED),
                run(c.id, finished_at=local(TODAY, 3, 10), status=SyncStatus.OK),
                run(d.id, finished_at=None, status=SyncStatus.RUNNING),
                # Yesterday: A twice, B just after midnight on our clock (the evening before in UTC); D's run
                # stopped by a shutdown and its crashed one count as neither.
                run(a.id, finished_at=local(YESTERDAY, 2, 30), status=SyncStatus.OK),
                run(a.id, finished_at=local(YESTERDAY, 14, 30), status=SyncStatus.OK),
                run(b.id, finished_at=local(YESTERDAY, 0, 30), status=SyncStatus.OK),
                run(d.id, finished_at=local(YESTERDAY, 2, 0), status=SyncStatus.INTERRUPTED),
                run(d.id, finished_at=local(YESTERDAY, 2, 5), status=SyncStatus.ABANDONED),
                # The evening of the day before, late on our clock.
                run(c.id, finished_at=local(TODAY - timedelta(days=2), 23, 30), status=SyncStatus.FAILED),
                # The first day of the fourteen, just after midnight; and the day before it, outside.
                run(a.id, finished_at=local(first, 0, 10), status=SyncStatus.OK),
                run(b.id, finished_at=local(first - timedelta(days=1), 23, 50), status=SyncStatus.FAILED),
            ]
        )
        await session.commit()
        health = await digest.sync_health(session, last_day=TODAY, now=NOW, tz="Europe/Oslo")

    assert [day.day for day in health] == [first + timedelta(days=n) for n in range(14)]
    assert health[-1] == DayHealth(TODAY, ok=2, failed=1)
    assert health[-2] == DayHealth(YESTERDAY, ok=2, failed=0)
    assert health[-3] == DayHealth(TODAY - timedelta(days=2), ok=0, failed=1)
    assert health[0] == DayHealth(first, ok=1, failed=0)
    assert all(day == DayHealth(day.day, 0, 0) for day in health[1:-3])


async def test_sync_health_follows_the_clock_change(store):
    # Summer time ends in Oslo on 25 Oct 2026: that day has 25 hours.
    change = date(2026, 10, 25)
    async with store.session() as session:
        a = await add(session, name="Aurora AS")
        session.add_all(
            [
                run(a.id, finished_at=local(change, 0, 30), status=SyncStatus.OK),  # 22:30 UTC the day before
                run(a.id, finished_at=local(change, 23, 30), status=SyncStatus.FAILED),  # 22:30 UTC that day
            ]
        )
        await session.commit()
        health = await digest.sync_health(
            session, last_day=change + timedelta(days=1), now=local(change + timedelta(days=1), 9), tz="Europe/Oslo"
        )
    assert health[-2] == DayHealth(change, ok=1, failed=0)  # one company: its OK run wins over the failure
    assert health[-3] == DayHealth(change - timedelta(days=1), ok=0, failed=0)


# --- the message ----------------------------------------------------------------------------------------------


def sample(**changes) -> Digest:
    values = {
        "day": TODAY,
        "by_state": {CompanyState.HEALTHY: 10, CompanyState.AWAITING_APPROVAL: 2, CompanyState.PERMISSION_ERROR: 1},
        "expiring": [ExpiringLink(1, "<!channel> & Co", "U0OLA", None, "U0KARI", NOW + timedelta(hours=20))],
        "stale": [StaleCompany(2, "Bris AS", "U0KARI", NOW - timedelta(days=3), NOW - timedelta(days=40))],
        "stale_before": local(YESTERDAY, 2),
        "problems": [OpenProblem(3, "Fjell AS", "U0PER", "Visma says <no>", NOW - timedelta(days=1), 2)],
        "health": [DayHealth(TODAY - timedelta(days=13 - n), ok=n, failed=n % 3) for n in range(14)],
    }
    values.update(changes)
    return Digest(**values)


def text_of(blocks) -> str:
    return "\n".join(str(block.to_dict()) for block in blocks)


def test_the_digest_says_the_counts_and_what_needs_a_person():
    facts = sample()
    blocks = views.digest_blocks(facts)
    shown = text_of(blocks)
    assert views.digest_text(facts) == (
        "Onboarding, Tue 24 Nov: 10 connected · 1 approval expires within 48 h · 1 need action · "
        "1 with stale data · 1 open problem"
    )
    assert "&lt;!channel&gt; &amp; Co" in shown
    assert "<!channel>" not in shown
    assert "<@U0OLA> approves" in shown
    assert "Visma says &lt;no&gt;" in shown
    assert "seen 2 times" in shown
    assert "<@U0PER>" in shown
    assert "🟢 10 healthy · 🟡 2 awaiting approval · 🔴 1 need action" in shown
    assert "on 9 of the last 14 days some company had only failed runs" in shown


def test_long_lists_are_cut_and_a_quiet_day_says_so():
    many = [StaleCompany(n, f"Firma {n} AS", "U0KARI", None, NOW - timedelta(days=9)) for n in range(30)]
    shown = text_of(views.digest_blocks(sample(stale=many)))
    assert f"Firma {views.LISTED - 1} AS" in shown
    assert f"Firma {views.LISTED} AS" not in shown
    assert f"…and {30 - views.LISTED} more" in shown
    quiet = views.digest_blocks(sample(expiring=[], stale=[], problems=[]))
    assert "Nothing needs a person today" in text_of(quiet)
    assert len(quiet) < 50


def test_the_chart_text_describes_every_day():
    alt = views.chart_alt_text(sample().health)
    assert alt.count(" OK, ") == 14
    assert "24 Nov 13 OK, 1 failed" in alt
    assert len(alt) <= 1000


# --- the chart ------------------------------------------------------------------------------------------------


def test_the_chart_is_a_png_with_both_series_in_colour_blind_safe_colours():
    data = chart.draw(sample().health, zone="Europe/Oslo")
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    assert 5_000 < len(data) < 200_000
    image = Image.open(io.BytesIO(data))
    assert image.format == "PNG"
    assert image.size == (chart.WIDTH, chart.HEIGHT)
    colours = {colour for _count, colour in image.getcolors(maxcolors=1_000_000)}
    assert chart.OK_COLOUR in colours
    assert chart.FAILED_COLOUR in colours
    assert chart.title(sample().health) == "Sync health, 11 to 24 Nov 2026"


def test_a_chart_of_days_without_runs_is_still_drawn():
    empty = [DayHealth(TODAY - timedelta(days=13 - n), 0, 0) for n in range(14)]
    image = Image.open(io.BytesIO(chart.draw(empty, zone="Europe/Oslo")))
    assert image.size == (chart.WIDTH, chart.HEIGHT)
    plot = image.crop((chart.LEFT, chart.TOP, chart.WIDTH - chart.RIGHT, chart.HEIGHT - chart.BOTTOM))
    colours = {colour for _count, colour in plot.getcolors(maxcolors=1_000_000)}
    assert chart.OK_COLOUR not in colours  # no bars; the legend above still shows both colours
    assert chart.FAILED_COLOUR not in colours
