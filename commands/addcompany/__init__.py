"""/addcompany: staff register a client company in three modal steps and the approval link goes out."""

from slack_bolt.async_app import AsyncApp

from bot.listeners import tracked
from commands.addcompany import handlers
from commands.addcompany.ids import COMMAND, Field, Step


def register(app: AsyncApp) -> None:
    """Wire the flow's listeners."""
    app.command(COMMAND)(tracked(handlers.open_modal))
    app.action(Field.SYSTEM.value)(tracked(handlers.system_chosen))
    app.options(Field.NXT_COMPANY.value)(tracked(handlers.nxt_companies))
    app.view(Step.COMPANY.value)(tracked(handlers.company_submitted))
    app.view(Step.SETTINGS.value)(tracked(handlers.settings_submitted))
    app.view(Step.APPROVER.value)(tracked(handlers.approver_submitted))
