"""The sync engine against the simulator's failure modes: it rides out what it should, and says what it must.

Each test connects Nordlys Bakeri AS through the real flow, then breaks Visma in one way and presses the
card's buttons as Kari would, checking the store, the run record, the card and its thread.
"""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import timedelta
from typing import Any

import pytest
from sqlmodel import col, select

from bot import scheduler
from bot.domain.books import Book
from bot.domain.types import CompanyState, SyncStatus
from bot.simulators.stack import running_stack
from bot.store import books
from bot.store.models import Company, Connection, SyncCursor, SyncRun, Voucher
from bot.sync.engine import sync_company
from bot.sync.tokens import TokenKeeper
from commands.card.ids import CardAction
from tests.scenario.conftest import QUICK
from tests.scenario.flow import add_company, approval_link, approve, block_text, cards, press, thread

FAST = {**QUICK, "visma_timeout_seconds": 0.5, "visma_page_size": 50}


@pytest.fixture
async def stack(database_url, clock):
    async with running_stack(database_url=database_url, clock=clock, **FAST) as running:
        yield running


async def connected(stack) -> int:
    await add_company(stack)
    await approve(stack, approval_link(stack))
    async with stack.deps.store.session() as session:
        company = (await session.exec(select(Company))).one()
        assert company.state == CompanyState.HEALTHY, company.state
        assert company.id is not None
        return company.id


async def last_run(stack) -> SyncRun:
    async with stack.deps.store.session() as session:
        return (await session.exec(select(SyncRun).order_by(col(SyncRun.id).desc()))).first()


async def stored_vouchers(stack) -> dict[str, tuple[Any, ...]]:
    async with stack.deps.store.session() as session:
        rows = (await session.exec(select(Voucher))).all()
    return {row.external_id: (row.text, row.voucher_date, row.modified_at) for row in rows}


def sim_voucher_ids(stack) -> set[str]:
    company = stack.eaccounting.companies[stack.eaccounting.company_id_by_org("988077917")]
    return {voucher["Id"] for voucher in company.vouchers if voucher["VoucherDate"] >= "2026-01-01"}


def requests_to(stack, prefix: str) -> int:
    return sum(1 for request in stack.eaccounting.requests if request.path.startswith(prefix))


async def test_a_429_storm_is_ridden_out_without_an_alert(stack):
    await connected(stack)
    before = len(thread(stack))
    stack.eaccounting.inject("rate_limit", path="/v2/vouchers", times=3, seconds=1)
    await press(stack, CardAction.SYNC_NOW)
    run = await last_run(stack)
    assert run.status == SyncStatus.OK
    assert run.retries >= 3
    assert len(thread(stack)) == before
    assert set(await stored_vouchers(stack)) == sim_voucher_ids(stack)


async def test_5xx_timeouts_and_html_pages_are_retried(stack):
    await connected(stack)
    stack.eaccounting.inject("unavailable", path="/v2/vouchers", times=2)
    stack.eaccounting.inject("html", path="/v2/accounts", times=1)
    stack.eaccounting.inject("hang", path="/v2/fiscalyears", times=1, seconds=1.0)
    stack.eaccounting.inject("server_error", path="/v2/accountbalances", times=1)
    await press(stack, CardAction.SYNC_NOW)
    run = await last_run(stack)
    assert run.status == SyncStatus.OK, run.error_message
    assert run.retries >= 5
    assert "Needs action" not in block_text(cards(stack)[-1])


async def test_an_outage_shows_on_the_card_after_three_runs_and_clears(stack):
    company_id = await connected(stack)
    before = len(thread(stack))
    stack.eaccounting.inject("unavailable", path="/v2/", times=10_000)
    for attempt in range(3):
        await press(stack, CardAction.SYNC_NOW)
        run = await last_run(stack)
        assert run.status == SyncStatus.FAILED
        card = block_text(cards(stack)[-1])
        assert ("has not answered properly since" in card) is (attempt == 2)
        assert "Needs action" not in card  # an outage is nobody's permission problem
    assert len(thread(stack)) == before + 1  # said once in the thread…
    await press(stack, CardAction.SYNC_NOW)
    assert len(thread(stack)) == before + 1  # …not again at the next failure
    async with stack.deps.store.session() as session:
        company = await session.get(Company, company_id)
        assert company.state == CompanyState.HEALTHY
        assert company.failure_count == 4
    stack.eaccounting.faults.clear()
    await press(stack, CardAction.SYNC_NOW)
    card = block_text(cards(stack)[-1])
    assert "has not answered" not in card
    assert "answers again" in block_text(thread(stack)[-1])


async def test_an_identity_server_outage_is_not_a_consent_alert(stack, clock):
    await connected(stack)
    before = len(thread(stack))
    clock.advance(hours=2)  # the access token has expired: the run must refresh
    stack.eaccounting.inject_identity("unavailable", times=50)
    await press(stack, CardAction.SYNC_NOW)
    run = await last_run(stack)
    assert run.status == SyncStatus.FAILED
    assert "identity server" in (run.error_message or "")
    assert "Needs action" not in block_text(cards(stack)[-1])
    assert len(thread(stack)) == before


async def test_our_own_bad_client_secret_is_not_blamed_on_the_client(stack, clock):
    await connected(stack)
    _, uris = stack.eaccounting.clients["fjordbris_onboarding"]
    stack.eaccounting.clients["fjordbris_onboarding"] = ("rotated-elsewhere", uris)
    clock.advance(hours=2)
    await press(stack, CardAction.SYNC_NOW)
    run = await last_run(stack)
    assert run.status == SyncStatus.FAILED
    assert "app registration" in (run.error_message or "")
    assert "Needs action" not in block_text(cards(stack)[-1])


async def test_a_lost_refresh_response_is_survived_within_the_grace_period(stack, clock):
    await connected(stack)
    clock.advance(hours=2)
    stack.eaccounting.inject_identity("lost_response")
    await press(stack, CardAction.SYNC_NOW)
    run = await last_run(stack)
    assert run.status == SyncStatus.OK, run.error_message
    assert "Needs action" not in block_text(cards(stack)[-1])


async def test_two_runs_refreshing_at_once_spend_the_refresh_token_once(stack, clock):
    company_id = await connected(stack)
    clock.advance(hours=2)
    async with stack.deps.store.session() as session:
        connection = (await session.exec(select(Connection).where(Connection.company_id == company_id))).one()
    deps = stack.deps
    system = deps.system_for("eaccounting")
    # A second process: same database, its own name and its own in-process locks.
    other = dataclasses.replace(deps, owner="other-process", locks={})
    keepers = [
        TokenKeeper(each, system, connection_id=connection.id, policy=deps.retry_policy) for each in (deps, other)
    ]
    tokens = await asyncio.gather(*(keeper.access() for keeper in keepers))
    assert tokens[0] == tokens[1]
    async with stack.deps.store.session() as session:
        refreshed = await session.get(Connection, connection.id)
        assert refreshed.version == connection.version + 1
        assert refreshed.refresh_owner is None
    # The stored refresh token is the live one: the next refresh works.
    clock.advance(hours=2)
    assert await keepers[0].access() != tokens[0]


async def test_a_401_gets_one_refresh_and_one_retry(stack):
    await connected(stack)
    # Visma stops accepting the access token before its expiry (e.g. a password change).
    stack.eaccounting.access.clear()
    await press(stack, CardAction.SYNC_NOW)
    run = await last_run(stack)
    assert run.status == SyncStatus.OK, run.error_message


async def test_a_run_left_by_a_dead_process_is_closed_and_the_company_resumes(stack, clock):
    company_id = await connected(stack)
    now = clock()
    async with stack.deps.store.session() as session:
        session.add(
            SyncRun(
                company_id=company_id, started_at=now, owner="dead-host:1:abc", lease_until=now + timedelta(minutes=2)
            )
        )
        await session.commit()
    # While its lease lasts, the company counts as syncing and Sync now says so.
    assert await sync_company(stack.deps, company_id=company_id, actor="test") is None
    clock.advance(minutes=3)
    assert await scheduler.recover(stack.deps) == [company_id]
    assert "syncing" not in block_text(cards(stack)[-1])
    async with stack.deps.store.session() as session:
        dead = (await session.exec(select(SyncRun).where(SyncRun.owner == "dead-host:1:abc"))).one()
        assert dead.status == SyncStatus.ABANDONED
        company = await session.get(Company, company_id)
        assert company.next_sync_at <= clock()
    pool = scheduler.SyncPool(stack.deps, parallel=2)
    assert await scheduler.tick(stack.deps, pool, every=timedelta(seconds=60)) == [company_id]
    await stack.settle()
    assert (await last_run(stack)).status == SyncStatus.OK


async def test_a_voucher_booked_while_paging_is_stored_once(stack):
    await connected(stack)
    world = stack.eaccounting
    nordlys = world.company_id_by_org("988077917")
    booked: list[str] = []

    def book_on_first_page(path: str, page: int) -> None:
        if path.startswith("/v2/vouchers") and not booked:
            booked.append(world.book_voucher(nordlys)["Id"])
            world.touch_voucher(nordlys, sorted(sim_voucher_ids(stack))[0])

    world.after_page = book_on_first_page
    await press(stack, CardAction.FULL_RESYNC)
    run = await last_run(stack)
    assert run.status == SyncStatus.OK, run.error_message
    stored = await stored_vouchers(stack)
    assert booked[0] in stored
    assert set(stored) == sim_voucher_ids(stack)


async def test_the_next_sync_reads_only_what_changed(stack):
    await connected(stack)
    world = stack.eaccounting
    nordlys = world.company_id_by_org("988077917")
    changed = sorted(sim_voucher_ids(stack))[3]
    world.touch_voucher(nordlys, changed)
    before = requests_to(stack, "/v2/vouchers")
    await press(stack, CardAction.SYNC_NOW)
    assert requests_to(stack, "/v2/vouchers") - before == 1  # one page: only the change (and the overlap)
    async with stack.deps.store.session() as session:
        text = (await session.exec(select(Voucher.text).where(Voucher.external_id == changed))).one()
    sim = next(v for v in world.companies[nordlys].vouchers if v["Id"] == changed)
    assert text == sim["VoucherText"]

    before = requests_to(stack, "/v2/vouchers")
    await press(stack, CardAction.FULL_RESYNC)
    assert requests_to(stack, "/v2/vouchers") - before > 3  # every page again


async def test_a_shutdown_stops_at_a_page_boundary_and_the_next_run_resumes(stack):
    company_id = await connected(stack)
    deps = stack.deps
    pages: list[int] = []

    def stop_after_two_pages(path: str, page: int) -> None:
        if path.startswith("/v2/vouchers"):
            pages.append(page)
            if len(pages) == 2:
                deps.stopping.set()

    stack.eaccounting.after_page = stop_after_two_pages
    assert await sync_company(deps, company_id=company_id, actor="test", full=True) == SyncStatus.INTERRUPTED
    async with deps.store.session() as session:
        cursor = (await session.exec(select(SyncCursor).where(SyncCursor.book == Book.VOUCHERS.value))).one()
        assert "position" in cursor.cursor
        company = await session.get(Company, company_id)
        assert company.next_sync_at <= stack.deps.clock()
    deps.stopping.clear()
    stack.eaccounting.after_page = None
    assert await sync_company(deps, company_id=company_id, actor="test") == SyncStatus.OK
    assert set(await stored_vouchers(stack)) == sim_voucher_ids(stack)


async def test_an_invoicing_only_company_syncs_without_balances(stack):
    company_id = await connected(stack)
    stack.eaccounting.switches.product_variant = True
    async with stack.deps.store.session() as session:
        before = await books.count(session, book=Book.BALANCES, company_id=company_id)
    await press(stack, CardAction.SYNC_NOW)
    run = await last_run(stack)
    assert run.status == SyncStatus.OK, run.error_message
    assert "Needs action" not in block_text(cards(stack)[-1])
    async with stack.deps.store.session() as session:
        assert await books.count(session, book=Book.BALANCES, company_id=company_id) == before


async def test_the_card_shows_the_lock_date(stack):
    await connected(stack)
    assert "books locked to 31 Dec 2025" in block_text(cards(stack)[-1])


async def test_tokens_sealed_with_another_key_fail_quietly_and_do_not_strand_the_company(stack):
    from cryptography.fernet import Fernet

    from bot.crypto import Vault

    await connected(stack)
    stack.deps.vault = Vault(Fernet.generate_key().decode())  # ENCRYPTION_KEY changed under the stored tokens
    await press(stack, CardAction.SYNC_NOW)
    run = await last_run(stack)
    assert run.status == SyncStatus.FAILED
    assert "ENCRYPTION_KEY" in (run.error_message or "")
    card = block_text(cards(stack)[-1])
    assert "Needs action" not in card
    assert "syncing" not in card
    assert "Sync now" in card  # nothing is stuck: the next run can start


async def test_a_failed_card_update_at_the_end_does_not_strand_the_company(stack):
    company_id = await connected(stack)
    stack.slack_world.switches.fail["chat.update"] = "channel_not_found"
    assert await sync_company(stack.deps, company_id=company_id, actor="test") == SyncStatus.OK
    stack.slack_world.switches.fail.clear()
    assert await sync_company(stack.deps, company_id=company_id, actor="test") == SyncStatus.OK
    await stack.app.state.deliverer.deliver_due(everything=True)  # Slack is back: what waited goes out
    await stack.settle()
    assert "syncing" not in block_text(cards(stack)[-1])
