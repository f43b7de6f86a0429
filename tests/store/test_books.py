"""Books are upserted on (company, natural key): a page written twice changes nothing, a changed row updates."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

from sqlmodel import select

from bot.domain.books import Book
from bot.store import books
from bot.store.models import AccountBalance, Voucher
from tests import factories

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


async def company(store) -> int:
    async with store.session() as session:
        row = factories.company(now=NOW)
        session.add(row)
        await session.commit()
        assert row.id is not None
        return row.id


def voucher(n: int, text: str = "Kontantsalg") -> tuple:
    rows = [{"AccountNumber": 1920, "DebitAmount": 100.0, "CreditAmount": 0.0, "VatCodeId": "c0de"}]
    modified = datetime(2026, 3, n % 28 + 1, 12, 0, tzinfo=UTC)
    attachments = {"DocumentId": "d0c", "DocumentType": 3, "AttachmentIds": ["a1"]} if n == 1 else None
    return (f"v{n}", date(2026, 3, n % 28 + 1), f"A {n}", "A", 2, text, modified, f"s{n}", attachments, rows)


async def test_upserts_are_idempotent_and_update_changed_rows(store):
    company_id = await company(store)
    for _ in range(2):  # the same page twice (a resumed run)
        async with store.session() as session:
            assert (
                await books.upsert(
                    session, book=Book.VOUCHERS, company_id=company_id, rows=[voucher(n) for n in range(50)]
                )
                == 50
            )
            await session.commit()
    async with store.session() as session:
        await books.upsert(session, book=Book.VOUCHERS, company_id=company_id, rows=[voucher(7, "Endret")])
        await session.commit()
    async with store.session() as session:
        assert await books.count(session, book=Book.VOUCHERS, company_id=company_id) == 50
        seven = (await session.exec(select(Voucher).where(Voucher.external_id == "v7"))).one()
        one = (await session.exec(select(Voucher).where(Voucher.external_id == "v1"))).one()
    # What the raw writer stored reads back through the ORM in the ordinary types.
    assert seven.text == "Endret"
    assert seven.voucher_date == date(2026, 3, 8)
    assert seven.modified_at == datetime(2026, 3, 8, 12, 0, tzinfo=UTC)
    assert seven.rows[0]["VatCodeId"] == "c0de"
    assert seven.voucher_type == 2
    assert seven.number_series == "A"
    assert one.attachments == {"DocumentId": "d0c", "DocumentType": 3, "AttachmentIds": ["a1"]}


async def test_balances_keep_their_decimals(store):
    company_id = await company(store)
    async with store.session() as session:
        rows = [(1920, date(2026, 1, 31), 5750.25), (3000, date(2026, 1, 31), -1234.5)]
        await books.upsert(session, book=Book.BALANCES, company_id=company_id, rows=rows)
        await session.commit()
        stored = {b.account_number: b.balance for b in (await session.exec(select(AccountBalance))).all()}
    assert stored == {1920: Decimal("5750.25"), 3000: Decimal("-1234.50")}


async def test_cursors_are_saved_replaced_and_forgotten(store):
    company_id = await company(store)
    async with store.session() as session:
        await books.save_cursor(session, company_id=company_id, book=Book.VOUCHERS, cursor={"page": 2}, now=NOW)
        await session.commit()
    async with store.session() as session:
        await books.save_cursor(
            session, company_id=company_id, book=Book.VOUCHERS, cursor={"watermark": "2026-03-01"}, now=NOW
        )
        await session.commit()
        assert await books.cursors(session, company_id=company_id) == {Book.VOUCHERS: {"watermark": "2026-03-01"}}
        await books.forget_cursors(session, company_id=company_id)
        await session.commit()
        assert await books.cursors(session, company_id=company_id) == {}
