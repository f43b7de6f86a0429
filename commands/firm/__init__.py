"""The firm's settings, set by staff from Slack."""

from slack_bolt.async_app import AsyncApp

from bot.listeners import tracked
from commands.firm import handlers
from commands.firm.ids import FirmAction, FirmView


def register(app: AsyncApp) -> None:
    """Wire the settings button and modal."""
    app.action(FirmAction.OPEN.value)(tracked(handlers.open_settings))
    app.view(FirmView.SETTINGS.value)(tracked(handlers.settings_submitted))
