"""The approver's side in Slack: the DM and its buttons."""

from slack_bolt.async_app import AsyncApp

from bot.listeners import tracked
from commands.approval import handlers
from commands.approval.ids import ApprovalAction


def register(app: AsyncApp) -> None:
    """Wire the DM's buttons."""
    app.action(ApprovalAction.OPEN_LINK.value)(tracked(handlers.link_opened))
    app.action(ApprovalAction.DECLINE.value)(tracked(handlers.decline))
