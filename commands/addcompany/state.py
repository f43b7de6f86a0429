"""What the /addcompany modal carries between steps in `private_metadata`: plain values, never ORM rows."""

from __future__ import annotations

from pydantic import BaseModel

from bot.services.companies import CompanyIdentity, ReconciliationSettings

# Slack caps private_metadata at 3,000 characters; these fields stay far below.
MAX_METADATA = 3000


class AddCompanyState(BaseModel):
    """The modal's memory between steps."""

    channel_id: str | None = None
    company: CompanyIdentity | None = None
    settings: ReconciliationSettings | None = None

    def dump(self) -> str:
        """Serialise for `private_metadata`."""
        text = self.model_dump_json(exclude_none=True)
        assert len(text) <= MAX_METADATA
        return text

    @classmethod
    def load(cls, raw: str | None) -> AddCompanyState:
        """Read back from `private_metadata` (an empty one is a fresh modal)."""
        return cls.model_validate_json(raw) if raw else cls()
