"""The firm's settings, set by staff from Slack."""

from slack_bolt.async_app import AsyncApp

from bot.listeners import tracked
from commands.firm.ids import FirmAction, FirmView


def register(app: AsyncApp) -> None:
    """Wire the settings button and modal."""
    # Imported here, not at the top: the home tab's views use this package's ids, and the handlers draw the
    # home tab again after a save.
    from commands.firm import handlers

    app.action(FirmAction.OPEN.value)(tracked(handlers.open_settings))
    app.view(FirmView.SETTINGS.value)(tracked(handlers.settings_submitted))
