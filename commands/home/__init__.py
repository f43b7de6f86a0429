"""The App Home tab."""

from collections.abc import Awaitable, Callable

from slack_bolt.async_app import AsyncApp
from slack_bolt.context.async_context import AsyncBoltContext

from bot.listeners import tracked
from commands.home import handlers
from commands.home.ids import HomeAction, HomeView
from commands.home.state import Remembered


def register(app: AsyncApp) -> None:
    """Wire the home tab, its filter, paging and search."""
    remembered = Remembered()

    @app.middleware
    async def home_memory(context: AsyncBoltContext, next: Callable[[], Awaitable[None]]) -> None:
        # Each person's last filter, per app: refreshes after a modal opened from the tab keep it.
        context[handlers.MEMORY] = remembered
        await next()

    app.event("app_home_opened")(tracked(handlers.home_opened))
    app.action(HomeAction.STATE.value)(tracked(handlers.state_chosen))
    app.action(HomeAction.SYSTEM.value)(tracked(handlers.system_chosen))
    app.action(HomeAction.PREVIOUS_PAGE.value)(tracked(handlers.page_chosen))
    app.action(HomeAction.NEXT_PAGE.value)(tracked(handlers.page_chosen))
    app.action(HomeAction.SEARCH.value)(tracked(handlers.search_opened))
    app.action(HomeAction.CLEAR_SEARCH.value)(tracked(handlers.search_cleared))
    app.view(HomeView.SEARCH.value)(tracked(handlers.search_submitted))
