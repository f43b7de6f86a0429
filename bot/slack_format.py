"""The one way values reach Slack's mrkdwn: escaped, with the bot's own mentions, dates and links built apart.

Slack reads `<…>` as a mention, a channel ping or a link and `&` as the start of an entity, so text from a
person or from Visma (names, e-mails, comments, Visma's messages) goes through `escape`, and templates with
such values through `fill`. Nothing else escapes: a value escaped twice shows `&lt;` to the reader.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime

_USER_ID = re.compile(r"[UW][A-Z0-9]{2,20}")


def escape(text: str) -> str:
    """Escape the three characters mrkdwn treats as control characters."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def fill(template: str, values: Mapping[str, str]) -> str:
    """A mrkdwn template written by us, with values from outside put in escaped."""
    return template.format_map({key: escape(str(value)) for key, value in values.items()})


def when(moment: datetime, style: str = "{date_short} {time}") -> str:
    """A time Slack shows in each reader's own time zone (the fallback is UTC)."""
    fallback = moment.strftime("%d %b %H:%M UTC")
    return f"<!date^{int(moment.timestamp())}^{style}|{fallback}>"


def day(moment: datetime) -> str:
    """A date Slack shows in each reader's own time zone."""
    return when(moment, "{date_short}")


def mention(user_id: str | None, fallback: str = "someone") -> str:
    """A user mention; anything that is not a Slack user id is shown as escaped text instead."""
    if user_id and _USER_ID.fullmatch(user_id):
        return f"<@{user_id}>"
    return escape(user_id or fallback)


def link(url: str, label: str) -> str:
    """A link the bot means (our own URLs), with an escaped label."""
    return f"<{url}|{escape(label)}>"
