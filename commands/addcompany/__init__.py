"""/addcompany: staff register a client company in three modal steps and the approval link goes out."""

from slack_bolt.async_app import AsyncApp

from commands.addcompany import handlers
from commands.addcompany.ids import COMMAND, Field, Step


def register(app: AsyncApp) -> None:
    """Wire the flow's listeners."""
    app.command(COMMAND)(handlers.open_modal)
    app.action(Field.SYSTEM.value)(handlers.system_chosen)
    app.view(Step.COMPANY.value)(handlers.company_submitted)
    app.view(Step.SETTINGS.value)(handlers.settings_submitted)
    app.view(Step.APPROVER.value)(handlers.approver_submitted)
