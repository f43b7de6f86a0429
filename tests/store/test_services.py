"""Repository functions against a migrated database: SQLite always, PostgreSQL when TEST_POSTGRES_URL is set."""

import asyncio
from datetime import UTC, date, datetime, timedelta

import pytest
from cryptography.fernet import Fernet
from sqlmodel import select

from bot.crypto import Vault, token_hash
from bot.domain.types import AccountingSystem, ApprovalStatus, CompanyState, Country
from bot.services import approvals, companies
from bot.services.approvals import LinkProblem, LinkRefused
from bot.services.companies import CompanyDraft, CompanyExists
from bot.store.models import ApprovalRequest, AuditEvent, Company, Connection
from bot.visma.eaccounting import TokenSet

NOW = datetime(2026, 11, 24, 14, 0, tzinfo=UTC)


def draft(**overrides):
    values = dict(
        system=AccountingSystem.EACCOUNTING,
        name="Nordlys Bakeri AS",
        country=Country.NO,
        org_number="988077917",
        period_type="monthly",
        fiscal_year_start_month=1,
        reconciliation_start=date(2026, 1, 1),
        vat_frequency="bimonthly",
        responsible_user_id="U0KARI",
        modules=["vat"],
        approver_user_id="U0OLA",
    )
    values.update(overrides)
    return CompanyDraft(**values)


async def issue(session, company):
    return await approvals.issue(
        session, company=company, requested_by="U0KARI", requested_by_name="Kari", now=NOW, valid_for=timedelta(days=7)
    )


async def registered(store, view_id="V1"):
    async with store.session() as session:
        company, _ = await companies.register(session, draft=draft(), actor="U0KARI", view_id=view_id, now=NOW)
        await session.commit()
        return company


async def test_register_is_idempotent_per_view_and_refuses_a_second_company(store):
    first = await registered(store)
    async with store.session() as session:
        again, created = await companies.register(session, draft=draft(), actor="U0KARI", view_id="V1", now=NOW)
        assert (again.id, created) == (first.id, False)
        with pytest.raises(CompanyExists) as caught:
            await companies.register(session, draft=draft(), actor="U0PER", view_id="V2", now=NOW)
        assert caught.value.company.id == first.id
        assert len((await session.exec(select(Company))).all()) == 1


async def test_register_records_who_did_it(store):
    company = await registered(store)
    async with store.session() as session:
        trail = await companies.history(session, company_id=company.id)
    assert [(event.actor, event.action) for event in trail] == [("U0KARI", "company.registered")]
    assert company.state == CompanyState.AWAITING_APPROVAL


async def test_a_link_is_stored_only_as_a_hash_and_works_until_it_expires(store):
    company = await registered(store)
    async with store.session() as session:
        issued = await issue(session, company)
        await session.commit()
    async with store.session() as session:
        rows = (await session.exec(select(ApprovalRequest))).all()
        assert [row.token_hash for row in rows] == [token_hash(issued.token)]
        assert all(issued.token not in str(value) for row in rows for value in vars(row).values())
        found = await approvals.by_token(session, token=issued.token, now=NOW + timedelta(days=6))
        assert found.id == issued.request.id
        with pytest.raises(LinkRefused) as expired:
            await approvals.by_token(session, token=issued.token, now=NOW + timedelta(days=7))
        assert expired.value.problem is LinkProblem.EXPIRED
        with pytest.raises(LinkRefused) as unknown:
            await approvals.by_token(session, token=issued.token[:-1] + "x", now=NOW)
        assert unknown.value.problem is LinkProblem.UNKNOWN


async def test_a_new_link_supersedes_the_old_and_a_used_link_is_refused(store):
    company = await registered(store)
    async with store.session() as session:
        old = await issue(session, company)
        new = await issue(session, company)
        await session.commit()
    async with store.session() as session:
        with pytest.raises(LinkRefused) as superseded:
            await approvals.by_token(session, token=old.token, now=NOW)
        assert superseded.value.problem is LinkProblem.SUPERSEDED
        request = await approvals.by_token(session, token=new.token, now=NOW)
        await approvals.complete(session, request=request, now=NOW)
        await session.commit()
    async with store.session() as session:
        with pytest.raises(LinkRefused) as twice:
            await approvals.complete(session, request=request, now=NOW)
        assert twice.value.problem is LinkProblem.USED
    async with store.session() as session:
        with pytest.raises(LinkRefused) as used:
            await approvals.by_token(session, token=new.token, now=NOW)
        assert used.value.problem is LinkProblem.USED
        assert used.value.request is not None
        assert used.value.request.status == ApprovalStatus.COMPLETED


async def test_oauth_state_is_single_use_and_short_lived(store):
    vault = Vault(Fernet.generate_key().decode())
    company = await registered(store)
    async with store.session() as session:
        issued = await issue(session, company)
        state, pkce = await approvals.start_oauth(session, request=issued.request, vault=vault, now=NOW)
        other, _ = await approvals.start_oauth(session, request=issued.request, vault=vault, now=NOW)
        await session.commit()
    async with store.session() as session:
        with pytest.raises(LinkRefused):
            await approvals.claim_state(session, state=state, now=NOW + approvals.OAUTH_WINDOW)
    async with store.session() as session:
        request, sealed = await approvals.claim_state(session, state=state, now=NOW + timedelta(minutes=1))
        assert request.id == issued.request.id
        assert vault.open(sealed) == pkce.verifier
        await session.commit()
    async with store.session() as session:
        with pytest.raises(LinkRefused) as replay:
            await approvals.claim_state(session, state=state, now=NOW)
        assert replay.value.problem is LinkProblem.BAD_STATE
        # A second sign-in of the same link, started before, still works.
        assert (await approvals.claim_state(session, state=other, now=NOW))[0].id == issued.request.id


async def test_concurrent_callbacks_with_one_state_claim_it_once(store):
    vault = Vault(Fernet.generate_key().decode())
    company = await registered(store)
    async with store.session() as session:
        issued = await issue(session, company)
        state, _ = await approvals.start_oauth(session, request=issued.request, vault=vault, now=NOW)
        await session.commit()

    async def claim() -> bool:
        async with store.session() as session:
            try:
                await approvals.claim_state(session, state=state, now=NOW)
            except LinkRefused:
                return False
            await session.commit()
            return True

    assert sorted(await asyncio.gather(*(claim() for _ in range(4)))) == [False, False, False, True]


async def test_tokens_are_sealed_at_rest(store):
    vault = Vault(Fernet.generate_key().decode())
    company = await registered(store)
    tokens = TokenSet("plain-access-token", "plain-refresh-token", NOW + timedelta(hours=1), "ea:api")
    async with store.session() as session:
        await approvals.save_connection(
            session,
            company=company,
            tokens=tokens,
            vault=vault,
            external_company_name="Nordlys Bakeri AS",
            connected_by="Ola",
            now=NOW,
        )
        await session.commit()
    async with store.session() as session:
        stored = (await session.exec(select(Connection))).one()
    assert "plain" not in stored.access_token_sealed + (stored.refresh_token_sealed or "")
    assert vault.open(stored.access_token_sealed) == "plain-access-token"
    assert "plain-access-token" not in repr(tokens)


async def test_transitions_are_audited_with_from_and_to(store):
    company = await registered(store)
    async with store.session() as session:
        company = await companies.get(session, company_id=company.id)
        assert companies.transition(session, company=company, to=CompanyState.CONNECTED, actor="Ola", now=NOW)
        assert not companies.transition(session, company=company, to=CompanyState.CONNECTED, actor="Ola", now=NOW)
        await session.commit()
        events = (await session.exec(select(AuditEvent).where(AuditEvent.action == "company.state"))).all()
    assert [event.detail for event in events] == [{"from": "awaiting_approval", "to": "connected", "reason": None}]
