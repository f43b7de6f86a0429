"""Pure Block Kit builders for a company's status card and its thread messages."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    ButtonElement,
    ConfirmObject,
    ContextBlock,
    MarkdownTextObject,
    SectionBlock,
)

from bot.domain.orgnumber import display
from bot.domain.problems import Fix, Problem
from bot.domain.types import AccountingSystem, CompanyState, Country
from bot.slack_format import day, escape, mention, when
from commands.card.ids import CardAction


@dataclass(frozen=True, slots=True)
class LastSync:
    """What the newest successful sync pulled."""

    finished_at: datetime
    vouchers: int
    accounts: int
    fiscal_years: int
    period_from: date | None
    period_to: date | None


@dataclass(frozen=True, slots=True)
class Card:
    """Everything the card shows, read from the store."""

    company_id: int
    name: str
    org_number: str
    country: Country
    system: AccountingSystem
    state: CompanyState
    state_since: datetime
    state_reason: str | None
    responsible_user_id: str
    approver_user_id: str | None
    approver_email: str | None
    link_sent_at: datetime | None = None
    link_expires_at: datetime | None = None
    connected_by: str | None = None
    connected_at: datetime | None = None
    last_sync: LastSync | None = None
    next_sync_at: datetime | None = None
    syncing: bool = False
    failure: str | None = None
    books_locked_to: date | None = None


_ICON = {
    CompanyState.DRAFT: "⚪",
    CompanyState.AWAITING_APPROVAL: "🟡",
    CompanyState.CONNECTED: "🟢",
    CompanyState.SYNCING: "🔄",
    CompanyState.HEALTHY: "🟢",
    CompanyState.PERMISSION_ERROR: "🔴",
    CompanyState.DISCONNECTED: "🔴",
    CompanyState.DEACTIVATED: "⚪",
}


def title(card: Card) -> str:
    """The card's first line: company, number, system."""
    number = display(card.country, card.org_number)
    return f"*{escape(card.name)}* · {number} · {card.system.label}"


def status_line(card: Card) -> str:
    """One line saying where the company stands and what happens next."""
    icon = _ICON[card.state]
    approver = mention(card.approver_user_id, card.approver_email or "the approver")
    if card.state is CompanyState.AWAITING_APPROVAL:
        sent = f" — link sent {day(card.link_sent_at)}" if card.link_sent_at else ""
        expires = f", expires {day(card.link_expires_at)}" if card.link_expires_at else ""
        return f"{icon} Awaiting approval by {approver}{sent}{expires}"
    if card.state in (CompanyState.PERMISSION_ERROR, CompanyState.DISCONNECTED):
        reason = f" — {card.state_reason}" if card.state_reason else ""
        return f"{icon} Needs action since {when(card.state_since)}{reason} (see thread)"
    if card.state is CompanyState.DEACTIVATED:
        return f"{icon} Deactivated {day(card.state_since)}"
    connected = ""
    if card.connected_by and card.connected_at:
        connected = f"Connected by {escape(card.connected_by)} {when(card.connected_at)}"
    if card.syncing or card.state is CompanyState.SYNCING:
        return f"{icon} {connected} · syncing now…"
    if card.last_sync is None:
        return f"{icon} {connected} · first sync starting"
    return f"{icon} {connected} · last sync {when(card.last_sync.finished_at)} ({sync_summary(card.last_sync)})"


def sync_summary(run: LastSync) -> str:
    """'237 vouchers, 8 accounts, Jan–Oct 2026'."""
    parts = [f"{run.vouchers} vouchers", f"{run.accounts} accounts"]
    if run.period_from and run.period_to:
        parts.append(period(run.period_from, run.period_to))
    return ", ".join(parts)


def period(start: date, end: date) -> str:
    """A compact month range: 'Jan–Oct 2026' or 'Nov 2025–Oct 2026'."""
    if start.year == end.year:
        return f"{start:%b}–{end:%b %Y}" if start.month != end.month else f"{end:%b %Y}"
    return f"{start:%b %Y}–{end:%b %Y}"


def card_blocks(card: Card) -> list[Block]:
    """The company's one channel message, edited in place as it moves through its life."""
    blocks: list[Block] = [
        SectionBlock(text=MarkdownTextObject(text=title(card))),
        ContextBlock(elements=[MarkdownTextObject(text=f"responsible: {mention(card.responsible_user_id)}")]),
        SectionBlock(text=MarkdownTextObject(text=status_line(card))),
    ]
    if card.failure and card.state in _CONNECTED:
        blocks.append(SectionBlock(text=MarkdownTextObject(text=card.failure)))
    details = []
    if card.next_sync_at and card.state in _CONNECTED and not card.syncing and not card.failure:
        details.append(f"next sync {when(card.next_sync_at)}")
    if card.books_locked_to and card.state in _CONNECTED:
        details.append(f"books locked to {card.books_locked_to:%-d %b %Y}")
    if details:
        blocks.append(ContextBlock(elements=[MarkdownTextObject(text=" · ".join(details))]))
    buttons = _buttons(card)
    if buttons:
        blocks.append(ActionsBlock(block_id=f"card_{card.company_id}", elements=buttons))
    return blocks


_CONNECTED = (CompanyState.HEALTHY, CompanyState.CONNECTED)


def card_text(card: Card) -> str:
    """The plain-text fallback (notifications, screen readers)."""
    return f"{card.name}: {status_line(card)}"


def _buttons(card: Card) -> list[ButtonElement]:
    value = str(card.company_id)
    if card.state is CompanyState.AWAITING_APPROVAL:
        return [ButtonElement(text="Resend link", action_id=CardAction.RESEND_LINK, value=value)]
    if card.state in (CompanyState.PERMISSION_ERROR, CompanyState.DISCONNECTED):
        return [
            ButtonElement(
                text="Send new approval link", action_id=CardAction.RESEND_LINK, value=value, style="primary"
            ),
            ButtonElement(text="Retry now", action_id=CardAction.RETRY, value=value),
        ]
    if card.state in _CONNECTED and not card.syncing:
        return [
            ButtonElement(text="Sync now", action_id=CardAction.SYNC_NOW, value=value),
            ButtonElement(
                text="Full resync",
                action_id=CardAction.FULL_RESYNC,
                value=value,
                confirm=ConfirmObject(
                    title="Read everything again?",
                    text="The next sync reads all of the company's books from the start, not only what changed.",
                    confirm="Full resync",
                    deny="Cancel",
                ),
            ),
        ]
    return []


def problem_blocks(
    *, company_name: str, responsible_user_id: str, problem: Problem, company_id: int, count: int = 1
) -> list[Block]:
    """A permission alert in the card's thread: what happened, who can fix it, how, and the button."""
    steps = "\n".join(f"{index}. {step}" for index, step in enumerate(problem.steps, start=1))
    repeated = f" (seen {count} times)" if count > 1 else ""
    blocks: list[Block] = [
        SectionBlock(
            text=MarkdownTextObject(
                text=f"{mention(responsible_user_id)} *{escape(company_name)}* — Visma says {problem.what} "
                f"({problem.code}){repeated}."
            )
        ),
        SectionBlock(text=MarkdownTextObject(text=f"*Who can fix it:* {problem.who}\n*How:*\n{steps}")),
    ]
    value = str(company_id)
    if problem.fix is Fix.NEW_LINK:
        blocks.append(
            ActionsBlock(
                elements=[
                    ButtonElement(
                        text="Send new approval link",
                        action_id=CardAction.RESEND_LINK,
                        value=value,
                        style="primary",
                    ),
                    ButtonElement(text="Retry now", action_id=CardAction.RETRY, value=value),
                ]
            )
        )
    elif problem.fix is Fix.RETRY:
        blocks.append(
            ActionsBlock(
                elements=[
                    ButtonElement(text="Retry now", action_id=CardAction.RETRY, value=value, style="primary"),
                ]
            )
        )
    return blocks


def note_blocks(text: str) -> list[Block]:
    """A short thread note (approval received, sync finished, link resent)."""
    return [SectionBlock(text=MarkdownTextObject(text=text))]
