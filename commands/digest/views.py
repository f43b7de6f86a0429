"""Pure Block Kit builders for the team channel's daily digest, and the words that go with its chart.

"Onboarding, Tue 24 Nov: 3 connected · 2 approvals expire within 48 h · 6 need action · 4 with stale data",
then what needs a person (links about to run out and who approves them, stale data, open problems), each list
short with a count of the rest. Names from people and from Visma are escaped; dates are Slack's own, shown in
each reader's time zone.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeVar

from slack_sdk.models.blocks import Block, ContextBlock, DividerBlock, HeaderBlock, MarkdownTextObject, SectionBlock

from bot.domain.types import CompanyState
from bot.services.digest import DayHealth, Digest, ExpiringLink, OpenProblem, StaleCompany
from bot.slack_format import day as slack_day
from bot.slack_format import escape, mention, when
from commands.card.views import approver

# Each list shows this many and counts the rest: the digest stays one screen, and under Slack's limits.
LISTED = 8
NEED_ACTION = (CompanyState.PERMISSION_ERROR, CompanyState.DISCONNECTED)
_STATES = (
    ("🟢", "healthy", (CompanyState.HEALTHY,)),
    ("🟢", "connected, first sync pending", (CompanyState.CONNECTED, CompanyState.SYNCING)),
    ("🟡", "awaiting approval", (CompanyState.AWAITING_APPROVAL,)),
    ("🔴", "need action", NEED_ACTION),
    ("⚪", "deactivated", (CompanyState.DEACTIVATED,)),
    ("⚪", "draft", (CompanyState.DRAFT,)),
)
T = TypeVar("T")


def _count(digest: Digest, states: Sequence[CompanyState]) -> int:
    return sum(digest.by_state.get(state, 0) for state in states)


def connected(digest: Digest) -> int:
    """Companies on the sync schedule."""
    return _count(digest, (CompanyState.HEALTHY, CompanyState.CONNECTED, CompanyState.SYNCING))


def headline(digest: Digest) -> str:
    """The one line the digest is about (plain text: the notification and the fallback show it too)."""
    approvals = len(digest.expiring)
    parts = [
        f"{connected(digest)} connected",
        f"{approvals} approval{'s' if approvals != 1 else ''} expire{'s' if approvals == 1 else ''} within 48 h",
        f"{_count(digest, NEED_ACTION)} need action",
        f"{len(digest.stale)} with stale data",
        f"{len(digest.problems)} open problem{'s' if len(digest.problems) != 1 else ''}",
    ]
    return " · ".join(parts)


def digest_text(digest: Digest) -> str:
    """The fallback text (notifications, screen readers)."""
    return f"Onboarding, {digest.day:%a %-d %b}: {headline(digest)}"


def digest_blocks(digest: Digest) -> list[Block]:
    """The day's digest message."""
    states = " · ".join(
        f"{icon} {count} {label}" for icon, label, members in _STATES if (count := _count(digest, members))
    )
    blocks: list[Block] = [
        HeaderBlock(text=f"Onboarding, {digest.day:%a %-d %b}"),
        SectionBlock(text=MarkdownTextObject(text=f"*{headline(digest)}*")),
        ContextBlock(elements=[MarkdownTextObject(text=states or "No companies registered yet.")]),
        DividerBlock(),
    ]
    lists = [
        _section("⏰ *Approval links that run out within 48 hours*", digest.expiring, _expiring),
        _section(f"🕰️ *Stale data* — no successful sync since {when(digest.stale_before)}", digest.stale, _stale),
        _section("🔴 *Open problems*", digest.problems, _problem),
    ]
    present = [section for section in lists if section is not None]
    blocks += present or [SectionBlock(text=MarkdownTextObject(text="✅ Nothing needs a person today."))]
    blocks.append(ContextBlock(elements=[MarkdownTextObject(text=_footer(digest.health))]))
    return blocks


def _section(heading: str, items: Sequence[T], line: Callable[[T], str]) -> SectionBlock | None:
    if not items:
        return None
    lines = [f"• {line(item)}" for item in items[:LISTED]]
    if len(items) > LISTED:
        lines.append(f"…and {len(items) - LISTED} more")
    return SectionBlock(text=MarkdownTextObject(text="\n".join([heading, *lines])))


def _expiring(link: ExpiringLink) -> str:
    who = approver(link.approver_user_id, link.approver_email)
    return (
        f"*{escape(link.company_name)}* — {who} approves; the link runs out {when(link.expires_at)}"
        f" (sent by {mention(link.requested_by)})"
    )


def _stale(company: StaleCompany) -> str:
    if company.last_sync_at is None:
        since = f"never synced (connected {slack_day(company.connected_since)})"
    else:
        since = f"last synced {when(company.last_sync_at)}"
    return f"*{escape(company.name)}* — {since} · {mention(company.responsible_user_id)}"


def _problem(problem: OpenProblem) -> str:
    seen = f", seen {problem.count} times" if problem.count > 1 else ""
    return (
        f"*{escape(problem.company_name)}* — {escape(problem.summary)} (since {slack_day(problem.since)}{seen})"
        f" · {mention(problem.responsible_user_id)}"
    )


def _footer(health: Sequence[DayHealth]) -> str:
    failing = sum(1 for day in health if day.failed)
    if failing:
        trend = f"on {failing} of the last {len(health)} days some company had only failed runs"
    else:
        trend = f"in the last {len(health)} days every company that ran had a successful sync that day"
    return (
        f"Sync health: {trend}; the chart is in this message's thread. Stale means two nightly runs in a row "
        "without a successful sync."
    )


def chart_comment(health: Sequence[DayHealth], *, zone: str) -> str:
    """The line above the chart in the thread."""
    return (
        f"Companies synced per day over the last {len(health)} days ({zone}): blue synced OK, vermillion had "
        "only failed runs that day."
    )


def chart_alt_text(health: Sequence[DayHealth]) -> str:
    """What the chart shows, for screen readers (Slack allows 1000 characters)."""
    days = "; ".join(f"{day.day:%-d %b} {day.ok} OK, {day.failed} failed" for day in health)
    return f"Bar chart of companies synced OK and failed per day. {days}."[:1000]
