"""The approver's side in Slack: the DM and its buttons."""

from slack_bolt.async_app import AsyncApp

from commands.approval import handlers
from commands.approval.ids import ApprovalAction


def register(app: AsyncApp) -> None:
    """Wire the DM's buttons."""
    app.action(ApprovalAction.OPEN_LINK.value)(handlers.link_opened)
    app.action(ApprovalAction.DECLINE.value)(handlers.decline)
