"""The App Home tab."""

from slack_bolt.async_app import AsyncApp

from bot.listeners import tracked
from commands.home import handlers


def register(app: AsyncApp) -> None:
    """Wire the home tab."""
    app.event("app_home_opened")(tracked(handlers.home_opened))
