"""Action and block IDs of a company's status card and its alerts, and what a button says it was drawn for."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class CardAction(StrEnum):
    """Buttons on the card and in its alerts; the value is a `ButtonRef`."""

    RESEND_LINK = "card_resend_link"
    SYNC_NOW = "card_sync_now"
    RETRY = "card_retry"
    FULL_RESYNC = "card_full_resync"
    CANCEL = "card_cancel"
    CHANGE_APPROVER = "card_change_approver"
    MARK_RESOLVED = "card_mark_resolved"
    DEACTIVATE = "card_deactivate"
    ACTIVATE = "card_activate"
    SNOOZE_DAY = "card_snooze_day"
    SNOOZE_WEEK = "card_snooze_week"
    UNSNOOZE = "card_unsnooze"
    RETRY_ALL = "card_retry_all"  # on a roll-up; its value is the roll-up's message id, not a ButtonRef


class CardView(StrEnum):
    """Modals opened from a card."""

    CHANGE_APPROVER = "card_change_approver_view"


@dataclass(frozen=True, slots=True)
class ButtonRef:
    """What a button was drawn for: the company, the state it was in, and the alert it sits on (if any).

    A press is acted on only while the company is still in that state (and the alert still open), so a
    forgotten button pressed days later cannot move a company out of turn.
    """

    company_id: int
    state: str
    alert_id: int | None = None

    def encode(self) -> str:
        """The button's value."""
        alert = f":{self.alert_id}" if self.alert_id is not None else ""
        return f"{self.company_id}:{self.state}{alert}"

    @classmethod
    def decode(cls, value: str) -> ButtonRef:
        """Read a button's value (raises ValueError for anything we did not write)."""
        parts = value.split(":")
        if len(parts) not in (2, 3) or not parts[0].isdigit() or not parts[1]:
            raise ValueError("not a card button value")
        alert = int(parts[2]) if len(parts) == 3 and parts[2].isdigit() else None
        if len(parts) == 3 and alert is None:
            raise ValueError("not a card button value")
        return cls(int(parts[0]), parts[1], alert)
