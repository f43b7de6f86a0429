"""The App Home tab."""

from slack_bolt.async_app import AsyncApp

from commands.home import handlers


def register(app: AsyncApp) -> None:
    """Wire the home tab."""
    app.event("app_home_opened")(handlers.home_opened)
