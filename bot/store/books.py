"""Writing books: batched upserts on (company, natural key), and the cursor committed with them.

Rows arrive by the hundred thousand, so they skip the ORM: one INSERT … ON CONFLICT DO UPDATE statement per
book and dialect, run with the driver's executemany. Values are converted once per column to what the
SQLAlchemy column types would have stored, so the ORM reads them back as usual.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime
from decimal import Decimal
from functools import cache
from typing import Any

import orjson
from sqlalchemy import JSON, Boolean, Date, DateTime, Numeric, Table, delete, func
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.domain.books import COLUMNS, KEYS, Book
from bot.store.models import (
    AccountBalance,
    FiscalYear,
    LedgerAccount,
    OpeningBalance,
    SyncCursor,
    VatCode,
    Voucher,
)

TABLES: dict[Book, Any] = {
    Book.FISCAL_YEARS: FiscalYear,
    Book.ACCOUNTS: LedgerAccount,
    Book.VAT_CODES: VatCode,
    Book.OPENING_BALANCES: OpeningBalance,
    Book.VOUCHERS: Voucher,
    Book.BALANCES: AccountBalance,
}

Convert = Callable[[Any], Any]


def _json(value: Any) -> Any:
    return None if value is None else orjson.dumps(value).decode()


def _sqlite_date(value: Any) -> Any:
    return value.isoformat() if isinstance(value, date) else value


def _sqlite_datetime(value: Any) -> Any:
    # SQLAlchemy keeps SQLite datetimes as naive UTC text ("2026-03-01 12:00:00.000000"); write the same.
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            value = value.astimezone(UTC).replace(tzinfo=None)
        return value.isoformat(" ", "microseconds")
    return value


def _sqlite_number(value: Any) -> Any:
    return float(value) if isinstance(value, Decimal) else value


def _sqlite_bool(value: Any) -> Any:
    return None if value is None else int(bool(value))


def _identity(value: Any) -> Any:
    return value


def _converter(column_type: Any, dialect: str) -> Convert:
    if isinstance(column_type, JSON):
        return _json
    if dialect != "sqlite":
        return _identity
    if isinstance(column_type, DateTime) or getattr(column_type, "impl", None).__class__ is DateTime:
        return _sqlite_datetime
    if isinstance(column_type, Date):
        return _sqlite_date
    if isinstance(column_type, Numeric):
        return _sqlite_number
    if isinstance(column_type, Boolean):
        return _sqlite_bool
    return _identity


@cache
def _statement(book: Book, dialect: str) -> tuple[str, tuple[Convert, ...]]:
    table: Table = TABLES[book].__table__
    columns = ("company_id", *COLUMNS[book])
    keys = ("company_id", *KEYS[book])
    updates = [name for name in columns if name not in keys]
    mark = "?" if dialect == "sqlite" else "%s"
    names = ", ".join(f'"{name}"' for name in columns)
    sets = ", ".join(f'"{name}" = excluded."{name}"' for name in updates)
    # Names come from our own table definitions, never from input; every value is a bound parameter.
    sql = (
        f'INSERT INTO "{table.name}" ({names}) VALUES ({", ".join(mark for _ in columns)}) '  # noqa: S608
        f"ON CONFLICT ({', '.join(keys)}) DO UPDATE SET {sets}"
    )
    converters = tuple(_converter(table.c[name].type, dialect) for name in columns)
    return sql, converters


async def upsert(session: AsyncSession, *, book: Book, company_id: int, rows: Sequence[tuple[Any, ...]]) -> int:
    """Insert or update rows of a book for a company (no commit); returns how many were written."""
    if not rows:
        return 0
    connection = await session.connection()
    sql, converters = _statement(book, connection.dialect.name)
    # Only the columns whose type needs it are converted (a million rows pass here in a big first sync).
    work = [(index, convert) for index, convert in enumerate(converters[1:]) if convert is not _identity]
    converted = []
    for row in rows:
        values = [company_id, *row]
        for index, convert in work:
            values[index + 1] = convert(values[index + 1])
        converted.append(tuple(values))
    await connection.exec_driver_sql(sql, converted)
    return len(rows)


async def save_cursor(
    session: AsyncSession, *, company_id: int, book: Book, cursor: dict[str, Any] | None, now: datetime
) -> None:
    """Store where reading a book stands (no commit: it goes with the rows it covers)."""
    query = select(SyncCursor).where(SyncCursor.company_id == company_id, SyncCursor.book == book.value)
    row = (await session.exec(query)).first()
    if row is None:
        row = SyncCursor(company_id=company_id, book=book.value, cursor=cursor or {}, updated_at=now)
    else:
        row.cursor = cursor or {}
        row.updated_at = now
    session.add(row)


async def cursors(session: AsyncSession, *, company_id: int) -> dict[Book, dict[str, Any]]:
    """Every stored cursor of a company, by book."""
    rows = (await session.exec(select(SyncCursor).where(SyncCursor.company_id == company_id))).all()
    return {Book(row.book): row.cursor for row in rows}


async def forget_cursors(session: AsyncSession, *, company_id: int) -> None:
    """Full resync: the next run reads every book from the beginning."""
    await session.exec(delete(SyncCursor).where(col(SyncCursor.company_id) == company_id))


async def count(session: AsyncSession, *, book: Book, company_id: int) -> int:
    """How many rows of a book the store holds for a company."""
    table = TABLES[book]
    query = select(func.count()).select_from(table).where(table.company_id == company_id)
    return int((await session.exec(query)).one())
