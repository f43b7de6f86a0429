"""What the /addcompany modal carries between steps in `private_metadata`: plain values, never ORM rows."""

from __future__ import annotations

from datetime import date

from pydantic import BaseModel

from bot.domain.types import AccountingSystem, Country

# Slack caps private_metadata at 3,000 characters; these fields stay far below.
MAX_METADATA = 3000


class CompanyStep(BaseModel):
    """Step 1: which company, in which system."""

    system: AccountingSystem
    name: str
    country: Country
    org_number: str


class SettingsStep(BaseModel):
    """Step 2: how the company is reconciled."""

    period_type: str
    fiscal_year_start_month: int
    reconciliation_start: date
    vat_frequency: str
    responsible_user_id: str
    modules: list[str]
    comment: str | None = None


class AddCompanyState(BaseModel):
    """The modal's memory between steps."""

    channel_id: str | None = None
    company: CompanyStep | None = None
    settings: SettingsStep | None = None

    def dump(self) -> str:
        """Serialise for `private_metadata`."""
        text = self.model_dump_json(exclude_none=True)
        assert len(text) <= MAX_METADATA
        return text

    @classmethod
    def load(cls, raw: str | None) -> AddCompanyState:
        """Read back from `private_metadata` (an empty one is a fresh modal)."""
        return cls.model_validate_json(raw) if raw else cls()
