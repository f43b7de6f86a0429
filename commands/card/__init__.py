"""A company's status card: its buttons."""

from slack_bolt.async_app import AsyncApp

from bot.listeners import tracked
from commands.card.ids import CardAction, CardView


def register(app: AsyncApp) -> None:
    """Wire the card's buttons."""
    # Imported here, not at the top: other flows' views use this package's ids and builders (the repair
    # view of /addcompany offers the card's buttons), and the handlers import those flows back.
    from commands.card import handlers

    app.action(CardAction.RESEND_LINK.value)(tracked(handlers.resend_link))
    app.action(CardAction.CANCEL.value)(tracked(handlers.cancel))
    app.action(CardAction.CHANGE_APPROVER.value)(tracked(handlers.change_approver))
    app.view(CardView.CHANGE_APPROVER.value)(tracked(handlers.approver_changed))
    app.action(CardAction.SYNC_NOW.value)(tracked(handlers.sync_now))
    app.action(CardAction.RETRY.value)(tracked(handlers.sync_now))
    app.action(CardAction.FULL_RESYNC.value)(tracked(handlers.full_resync))
    app.action(CardAction.MARK_RESOLVED.value)(tracked(handlers.mark_resolved))
    app.action(CardAction.DEACTIVATE.value)(tracked(handlers.deactivate))
    app.action(CardAction.ACTIVATE.value)(tracked(handlers.activate))
    app.action(CardAction.SNOOZE_DAY.value)(tracked(handlers.snooze_day))
    app.action(CardAction.SNOOZE_WEEK.value)(tracked(handlers.snooze_week))
    app.action(CardAction.UNSNOOZE.value)(tracked(handlers.unsnooze))
    app.action(CardAction.RETRY_ALL.value)(tracked(handlers.retry_all))
