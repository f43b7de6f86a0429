"""What the home tab carries in its `private_metadata`: the person's filter and page (plain values)."""

from __future__ import annotations

from collections import OrderedDict

from pydantic import BaseModel, Field, ValidationError

from bot.domain.types import AccountingSystem
from bot.services.overview import Filter, StateGroup

MAX_QUERY = 100


class HomeState(BaseModel):
    """The filter and the page one person looks at."""

    group: StateGroup = StateGroup.ALL
    system: AccountingSystem | None = None
    query: str = Field(default="", max_length=MAX_QUERY)
    page: int = Field(default=0, ge=0)

    def dump(self) -> str:
        """Serialise for `private_metadata` (far below Slack's 3,000 characters)."""
        return self.model_dump_json(exclude_defaults=True)

    @classmethod
    def load(cls, raw: str | None) -> HomeState:
        """Read back from `private_metadata`; anything we did not write is the default filter."""
        if not raw:
            return cls()
        try:
            return cls.model_validate_json(raw)
        except ValidationError:
            return cls()

    def filter(self) -> Filter:
        """The filter the store understands."""
        return Filter(group=self.group, system=self.system, text=self.query)


class Remembered:
    """Each person's last home state in this process, for refreshes that come from a modal (which carries no
    home view): the change-approver modal of the card, the search and firm settings modals."""

    def __init__(self, limit: int = 2000) -> None:
        self._limit = limit
        self._states: OrderedDict[str, HomeState] = OrderedDict()

    def keep(self, user_id: str, state: HomeState) -> None:
        """Remember what `user_id` looks at now."""
        self._states[user_id] = state
        self._states.move_to_end(user_id)
        while len(self._states) > self._limit:
            self._states.popitem(last=False)

    def get(self, user_id: str) -> HomeState | None:
        """What `user_id` looked at last, if this process published their home tab."""
        return self._states.get(user_id)
