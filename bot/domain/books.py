"""The books the bot keeps per company, and the columns each is written with (Slack-free, database-free).

A system module yields each book's rows as tuples in exactly this column order; the store prepends the
company and upserts on the book's natural key, so a page read twice (a resumed or retried run) is harmless.
"""

from __future__ import annotations

from enum import StrEnum


class Book(StrEnum):
    """The data sets the bot keeps per company; each system offers some of them."""

    FISCAL_YEARS = "fiscal_years"
    ACCOUNTS = "accounts"
    VAT_CODES = "vat_codes"
    OPENING_BALANCES = "opening_balances"
    VOUCHERS = "vouchers"
    BALANCES = "balances"

    @property
    def noun(self) -> str:
        """How a summary names the book's rows ("vouchers", "VAT codes")."""
        return self.value.replace("_", " ").replace("vat", "VAT")


COLUMNS: dict[Book, tuple[str, ...]] = {
    Book.FISCAL_YEARS: ("external_id", "start_date", "end_date", "locked"),
    Book.ACCOUNTS: (
        "fiscal_year_external_id",
        "number",
        "name",
        "active",
        "vat_code_id",
        "account_type",
        "modified_at",
    ),
    Book.VAT_CODES: ("external_id", "code", "description", "rate"),
    Book.OPENING_BALANCES: ("account_number", "name", "balance"),
    Book.VOUCHERS: (
        "external_id",
        "voucher_date",
        "number",
        "number_series",
        "voucher_type",
        "text",
        "modified_at",
        "source_id",
        "attachments",
        "rows",
    ),
    Book.BALANCES: ("account_number", "balance_date", "balance"),
}

# The natural key of each book within a company: what makes an upsert idempotent.
KEYS: dict[Book, tuple[str, ...]] = {
    Book.FISCAL_YEARS: ("external_id",),
    Book.ACCOUNTS: ("fiscal_year_external_id", "number"),
    Book.VAT_CODES: ("external_id",),
    Book.OPENING_BALANCES: ("account_number",),
    Book.VOUCHERS: ("external_id",),
    Book.BALANCES: ("account_number", "balance_date"),
}
