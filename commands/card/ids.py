"""Action and block IDs of a company's status card and its alerts."""

from enum import StrEnum


class CardAction(StrEnum):
    """Buttons on the card and in its alerts; the value is the company id."""

    RESEND_LINK = "card_resend_link"
    SYNC_NOW = "card_sync_now"
    RETRY = "card_retry"
    FULL_RESYNC = "card_full_resync"
