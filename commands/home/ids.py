"""Action, block and view IDs of the App Home tab."""

from enum import StrEnum


class HomeAction(StrEnum):
    """The home tab's own controls (the companies carry the card's buttons, with the card's action ids)."""

    STATE = "home_filter_state"
    SYSTEM = "home_filter_system"
    SEARCH = "home_search_open"
    CLEAR_SEARCH = "home_search_clear"
    PREVIOUS_PAGE = "home_page_previous"
    NEXT_PAGE = "home_page_next"


class HomeView(StrEnum):
    """The search modal opened from the home tab, and its one field."""

    SEARCH = "home_search"
    QUERY = "home_search_query"


ALL_SYSTEMS = "all"
