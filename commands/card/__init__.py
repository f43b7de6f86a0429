"""A company's status card: its buttons."""

from slack_bolt.async_app import AsyncApp

from bot.listeners import tracked
from commands.card.ids import CardAction


def register(app: AsyncApp) -> None:
    """Wire the card's buttons."""
    # Imported here, not at the top: the core draws cards with commands.card.views, and the handlers call
    # back into the core (sync, onboarding); importing them with the package would close that loop.
    from commands.card import handlers

    app.action(CardAction.RESEND_LINK.value)(tracked(handlers.resend_link))
    app.action(CardAction.SYNC_NOW.value)(tracked(handlers.sync_now))
    app.action(CardAction.RETRY.value)(tracked(handlers.sync_now))
    app.action(CardAction.FULL_RESYNC.value)(tracked(handlers.full_resync))
