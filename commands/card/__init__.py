"""A company's status card: its buttons."""

from slack_bolt.async_app import AsyncApp

from bot.listeners import tracked
from commands.card import handlers
from commands.card.ids import CardAction


def register(app: AsyncApp) -> None:
    """Wire the card's buttons."""
    app.action(CardAction.RESEND_LINK.value)(tracked(handlers.resend_link))
    app.action(CardAction.SYNC_NOW.value)(tracked(handlers.sync_now))
    app.action(CardAction.RETRY.value)(tracked(handlers.sync_now))
