"""Small mrkdwn helpers shared by the Block Kit builders."""

from __future__ import annotations

from datetime import datetime


def when(moment: datetime, style: str = "{date_short} {time}") -> str:
    """A time Slack shows in each reader's own time zone (the fallback is UTC)."""
    fallback = moment.strftime("%d %b %H:%M UTC")
    return f"<!date^{int(moment.timestamp())}^{style}|{fallback}>"


def day(moment: datetime) -> str:
    """A date Slack shows in each reader's own time zone."""
    return when(moment, "{date_short}")


def mention(user_id: str | None, fallback: str = "someone") -> str:
    """A user mention, or plain text when we only have an e-mail."""
    return f"<@{user_id}>" if user_id else fallback


def escape(text: str) -> str:
    """Escape the three characters mrkdwn treats as control characters."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
