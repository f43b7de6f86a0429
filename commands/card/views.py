"""Pure Block Kit builders for a company's status card and its thread messages (notes and alerts).

Every value that comes from a person or from Visma goes through `slack_format.escape` (or `fill` for the
problem catalogue's templates); mentions, dates and links the bot means are built by their own helpers.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    ButtonElement,
    ConfirmObject,
    ContextBlock,
    MarkdownTextObject,
    SectionBlock,
)
from slack_sdk.models.views import View

from bot.domain.orgnumber import display
from bot.domain.problems import Fix, Problem
from bot.domain.types import CompanyState
from bot.i18n import N_, Language, translate
from bot.services.outbox import Note
from bot.services.status import Card, Failing, LastSync
from bot.slack_format import day, escape, fill, mention, when
from commands.addcompany.views import approver_inputs
from commands.card.ids import ButtonRef, CardAction, CardView

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
_CONNECTED = (CompanyState.HEALTHY, CompanyState.CONNECTED)


def title(card: Card) -> str:
    """The card's first line: company, number, system."""
    number = display(card.country, card.org_number)
    return f"*{escape(card.name)}* · {number} · {card.system.label}"


def approver(user_id: str | None, email: str | None) -> str:
    """The approver: a mention when they are in Slack, else their e-mail as plain text."""
    return mention(user_id) if user_id else escape(email or "the approver")


def status_line(card: Card) -> str:
    """One line saying where the company stands and what happens next."""
    icon = _ICON[card.state]
    who = approver(card.approver_user_id, card.approver_email)
    if card.state is CompanyState.AWAITING_APPROVAL:
        if card.expired_at and not card.link_sent_at:
            return f"⏰ The approval link expired {when(card.expired_at)} unused — press *Resend link*"
        if card.declined_at and not card.link_sent_at:
            return f"🟠 Declined by {who} {when(card.declined_at)} — check who should approve, then *Resend link*"
        sent = f" — link sent {day(card.link_sent_at)}" if card.link_sent_at else ""
        expires = f", expires {day(card.link_expires_at)}" if card.link_expires_at else ""
        return f"{icon} Awaiting approval by {who}{sent}{expires}"
    if card.state in (CompanyState.PERMISSION_ERROR, CompanyState.DISCONNECTED):
        reason = f" — {escape(card.state_reason)}" if card.state_reason else ""
        where = "see the roll-up in the channel" if card.alert_rolled_up else "see thread"
        snoozed = f" · 😴 snoozed until {when(card.alert_snoozed_until)}" if card.alert_snoozed_until else ""
        return f"{icon} Needs action since {when(card.state_since)}{reason} ({where}){snoozed}"
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
    return summary_of(vouchers=run.vouchers, accounts=run.accounts, start=run.period_from, end=run.period_to)


def summary_of(*, vouchers: int, accounts: int, start: date | None, end: date | None) -> str:
    """The numbers a sync left, in words."""
    parts = [f"{vouchers} vouchers", f"{accounts} accounts"]
    if start and end:
        parts.append(period(start, end))
    return ", ".join(parts)


def period(start: date, end: date) -> str:
    """A compact month range: 'Jan–Oct 2026' or 'Nov 2025–Oct 2026'."""
    if start.year == end.year:
        return f"{start:%b}–{end:%b %Y}" if start.month != end.month else f"{end:%b %Y}"
    return f"{start:%b %Y}–{end:%b %Y}"


def failure_line(failing: Failing, system_label: str) -> str:
    """ "Visma has not answered properly since …, next try …" for failures nobody at the client can fix."""
    since = when(failing.since) if failing.since else "a while"
    reason = f" ({escape(failing.reason)})" if failing.reason else ""
    upcoming = f", next try {when(failing.next_try)}" if failing.next_try else ""
    return f"⚠️ {system_label} has not answered properly since {since}{reason}{upcoming}. Nothing to do unless it lasts."


def card_blocks(card: Card) -> list[Block]:
    """The company's one channel message, edited in place as it moves through its life."""
    blocks: list[Block] = [
        SectionBlock(text=MarkdownTextObject(text=title(card))),
        ContextBlock(elements=[MarkdownTextObject(text=f"responsible: {mention(card.responsible_user_id)}")]),
        SectionBlock(text=MarkdownTextObject(text=status_line(card))),
    ]
    if card.failing and card.state in _CONNECTED:
        blocks.append(SectionBlock(text=MarkdownTextObject(text=failure_line(card.failing, card.system.label))))
    details = []
    if card.next_sync_at and card.state in _CONNECTED and not card.syncing and not card.failing:
        details.append(f"next sync {when(card.next_sync_at)}")
    if card.books_locked_to and card.state in _CONNECTED:
        details.append(f"books locked to {card.books_locked_to:%-d %b %Y}")
    if details:
        blocks.append(ContextBlock(elements=[MarkdownTextObject(text=" · ".join(details))]))
    buttons = _buttons(card)
    if buttons:
        blocks.append(ActionsBlock(block_id=f"card_{card.company_id}", elements=buttons))
    return blocks


def card_text(card: Card) -> str:
    """The fallback text (notifications, screen readers); Slack parses it too, so it is escaped as well."""
    return f"{escape(card.name)}: {status_line(card)}"


_CANCEL = ConfirmObject(
    title="Cancel this company?",
    text="Its approval links stop working and the company is deactivated. Nothing in Visma changes.",
    confirm="Cancel company",
    deny="Keep it",
)
_FULL_RESYNC = ConfirmObject(
    title="Read everything again?",
    text="The next sync reads all of the company's books from the start, not only what changed.",
    confirm="Full resync",
    deny="Cancel",
)


def _buttons(card: Card) -> list[ButtonElement]:
    value = ButtonRef(card.company_id, card.state.value).encode()
    if card.state is CompanyState.AWAITING_APPROVAL:
        return [
            ButtonElement(text="Resend link", action_id=CardAction.RESEND_LINK, value=value),
            ButtonElement(text="Change approver", action_id=CardAction.CHANGE_APPROVER, value=value),
            ButtonElement(text="Cancel", action_id=CardAction.CANCEL, value=value, confirm=_CANCEL),
        ]
    if card.state in (CompanyState.PERMISSION_ERROR, CompanyState.DISCONNECTED):
        return [
            ButtonElement(
                text="Send new approval link", action_id=CardAction.RESEND_LINK, value=value, style="primary"
            ),
            ButtonElement(text="Change approver", action_id=CardAction.CHANGE_APPROVER, value=value),
            ButtonElement(text="Retry now", action_id=CardAction.RETRY, value=value),
            _deactivate(value),
        ]
    if card.state in _CONNECTED and not card.syncing:
        return [
            ButtonElement(text="Sync now", action_id=CardAction.SYNC_NOW, value=value),
            ButtonElement(text="Full resync", action_id=CardAction.FULL_RESYNC, value=value, confirm=_FULL_RESYNC),
            _deactivate(value),
        ]
    if card.state is CompanyState.DEACTIVATED:
        return [ButtonElement(text="Activate", action_id=CardAction.ACTIVATE, value=value)]
    return []


def _deactivate(value: str) -> ButtonElement:
    return ButtonElement(
        text="Deactivate",
        action_id=CardAction.DEACTIVATE,
        value=value,
        confirm=ConfirmObject(
            title="Deactivate this company?",
            text="Its syncs stop and its links stop working; its books stay in the store. Activate brings it back.",
            confirm="Deactivate",
            deny="Keep it",
        ),
    )


_RESOLVED = {
    "sync_works": N_("the sync works again ({summary})."),
    "approved_again": N_("approved again by {approver}, and the right company came back."),
    "new_link": N_("a new approval link was sent."),
    "replaced": N_("a newer problem replaced this one (see below)."),
    "cancelled": N_("the company was cancelled."),
    "marked": N_("marked resolved by {by}."),
    "deactivated": N_("the company was deactivated."),
}


def alert_blocks(
    *,
    company_name: str,
    responsible_user_id: str,
    problem: Problem | None,
    ref: ButtonRef,
    count: int = 1,
    resolved: str | None = None,
    facts: Mapping[str, Any] | None = None,
    snoozed_until: datetime | None = None,
    language: Language = Language.EN,
) -> list[Block]:
    """A problem in the card's thread: what happened, who can fix it, how, and the button that fixes it, in the
    responsible person's language. Once resolved it keeps its explanation, gains a resolved line and loses its
    buttons."""
    facts = facts or {}
    blocks: list[Block] = []
    if facts.get("folded") and resolved is None:
        return [SectionBlock(text=MarkdownTextObject(text=folded_line(company_name, language)))]
    if problem is not None:
        problem = problem.in_language(language)
        steps = "\n".join(f"{index}. {fill(step, problem.values)}" for index, step in enumerate(problem.steps, 1))
        repeated = ""
        if count > 1:
            last = when(_moment(facts.get("last_seen")))
            repeated = " " + translate(language, "(seen {count} times, last {last})", count=count, last=last)
        says = translate(language, "Visma says: {what}", what=fill(problem.what, problem.values))
        who = translate(language, "Who can fix it:")
        how = translate(language, "How:")
        blocks += [
            SectionBlock(
                text=MarkdownTextObject(
                    text=f"{mention(responsible_user_id)} *{escape(company_name)}* — {says} "
                    f"({escape(problem.code)}){repeated}."
                )
            ),
            SectionBlock(
                text=MarkdownTextObject(text=f"*{who}* {fill(problem.who, problem.values)}\n*{how}*\n{steps}")
            ),
        ]
    if resolved is not None:
        line = translate(language, "Resolved: {how}", how=resolved_line(resolved, facts, language))
        blocks.append(ContextBlock(elements=[MarkdownTextObject(text=f"✅ {line}")]))
        return blocks
    if snoozed_until is not None:
        by = mention(str(facts.get("snoozed_by") or ""))
        line = translate(language, "Snoozed by {by} until {until}", by=by, until=when(snoozed_until))
        blocks.append(ContextBlock(elements=[MarkdownTextObject(text=f"😴 {line}")]))
    value = ref.encode()

    def button(label: str, action: CardAction, style: str | None = None) -> ButtonElement:
        return ButtonElement(text=label, action_id=action, value=value, style=style)

    if problem is not None and problem.fix is Fix.NEW_LINK:
        fixes = [
            button(translate(language, "Send new approval link"), CardAction.RESEND_LINK, "primary"),
            button(translate(language, "Change approver"), CardAction.CHANGE_APPROVER),
            button(translate(language, "Retry now"), CardAction.RETRY),
        ]
    elif problem is not None and problem.fix is Fix.RETRY:
        fixes = [button(translate(language, "Retry now"), CardAction.RETRY, "primary")]
    else:
        return blocks
    if snoozed_until is None:
        fixes += [
            button(translate(language, "Snooze a day"), CardAction.SNOOZE_DAY),
            button(translate(language, "Snooze a week"), CardAction.SNOOZE_WEEK),
        ]
    else:
        fixes.append(button(translate(language, "Unsnooze"), CardAction.UNSNOOZE))
    fixes.append(button(translate(language, "Mark resolved"), CardAction.MARK_RESOLVED))
    blocks.append(ActionsBlock(elements=fixes))
    return blocks


def folded_line(company_name: str, language: Language = Language.EN) -> str:
    """An alert posted before many companies had the same problem: the roll-up in the channel now lists it."""
    return "↪ " + translate(
        language,
        "*{company}* is one of several companies with the same problem at the same time; they are listed, and "
        "followed, in one message in the channel. The card above keeps this company's own buttons.",
        company=escape(company_name),
    )


def _moment(value: Any) -> datetime:
    return datetime.fromisoformat(str(value)) if value else datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class Member:
    """A company in a roll-up."""

    name: str
    since: datetime
    open: bool


SHOWN_MEMBERS = 40


def incident_blocks(
    *, incident_id: int, system_label: str, problem: Problem | None, members: list[Member], closed_at: datetime | None
) -> list[Block]:
    """Many companies hit by one cause at once (a Visma outage): one message listing them, edited as they
    recover, instead of one alert per company."""
    failing = [member for member in members if member.open]
    recovered = [member for member in members if not member.open]
    what = fill(problem.what, problem.values) if problem else f"{system_label} is not answering properly"
    code = f" ({escape(problem.code)})" if problem else ""
    first = min((member.since for member in members), default=None)
    since = f" since {when(first)}" if first else ""
    if closed_at is not None:
        head = (
            f"✅ *{system_label}: {what}*{code} — over {when(closed_at)}: all {len(members)} companies hit{since} "
            "work again or were dealt with."
        )
    else:
        head = f"🔴 *{system_label}: {what}*{code} — {len(failing)} of {len(members)} companies{since}."
    blocks: list[Block] = [SectionBlock(text=MarkdownTextObject(text=head))]
    if problem is not None and closed_at is None:
        steps = "\n".join(f"{index}. {fill(step, problem.values)}" for index, step in enumerate(problem.steps, 1))
        blocks.append(
            SectionBlock(
                text=MarkdownTextObject(text=f"*Who can fix it:* {fill(problem.who, problem.values)}\n*How:*\n{steps}")
            )
        )
    elif closed_at is None:
        blocks.append(
            SectionBlock(
                text=MarkdownTextObject(
                    text="Nothing to do at the clients: the syncs retry by themselves and this message follows them. "
                    "If it lasts, check Visma's status page."
                )
            )
        )
    for label, group in (("Still failing", failing), ("Working again", recovered)):
        if group:
            names = ", ".join(escape(member.name[:60]) for member in group[:SHOWN_MEMBERS])
            more = f" and {len(group) - SHOWN_MEMBERS} more" if len(group) > SHOWN_MEMBERS else ""
            blocks.append(SectionBlock(text=MarkdownTextObject(text=f"*{label} ({len(group)}):* {names}{more}")))
    if closed_at is None and failing:
        blocks.append(
            ActionsBlock(
                elements=[ButtonElement(text="Retry all now", action_id=CardAction.RETRY_ALL, value=str(incident_id))]
            )
        )
    blocks.append(
        ContextBlock(elements=[MarkdownTextObject(text="Each company's card in this channel keeps its own buttons.")])
    )
    return blocks


def incident_text(system_label: str, problem: Problem | None, open_count: int, closed: bool) -> str:
    """A roll-up's fallback text."""
    what = problem.plain(problem.what) if problem else "not answering properly"
    state = "over" if closed else f"{open_count} companies affected"
    return f"{system_label}: {escape(what)} — {state}"


def resolved_line(how: str, facts: Mapping[str, Any] | None, language: Language = Language.EN) -> str:
    """How an alert was resolved, in words."""
    facts = facts or {}
    template = _RESOLVED.get(how)
    if template is None:
        return escape(how)
    return translate(
        language,
        template,
        summary=summary_from(facts.get("summary")),
        approver=escape(str(facts.get("approver", ""))),
        by=mention(str(facts.get("by") or "")),
    )


def alert_text(company_name: str, problem: Problem | None, resolved: str | None) -> str:
    """An alert's fallback text."""
    what = problem.plain(problem.what) if problem else "a problem"
    prefix = "Resolved: " if resolved else ""
    return f"{prefix}{escape(company_name)}: {escape(what)}"


def summary_from(summary: Any) -> str:
    """A sync summary kept in an outbox message's facts, in words."""
    if not isinstance(summary, Mapping):
        return "the books are up to date"
    start, end = summary.get("period_from"), summary.get("period_to")
    return summary_of(
        vouchers=int(summary.get("vouchers") or 0),
        accounts=int(summary.get("accounts") or 0),
        start=date.fromisoformat(start) if start else None,
        end=date.fromisoformat(end) if end else None,
    )


def note_message(
    note: Note, facts: Mapping[str, Any], *, company_name: str, system_label: str, language: Language = Language.EN
) -> tuple[list[Block], str]:
    """A thread note and its fallback text, in the responsible person's language (the card's buttons it names
    keep the card's words)."""
    name = escape(company_name)
    requester = mention(facts.get("requested_by"))
    summary = summary_from(facts.get("summary"))
    if note is Note.CONNECTED:
        who = escape(str(facts.get("approver") or translate(language, "the approver")))
        text = translate(
            language,
            "Approved in Visma by {approver}; the company that came back is the one asked for. First sync starting.",
            approver=who,
        )
        return note_blocks(f"✅ {text}"), translate(language, "{company} connected", company=name)
    if note is Note.DECLINED:
        text = translate(
            language,
            "The approver declined the request ({requester}: check who should approve, then *Resend link*).",
            requester=requester,
        )
        return note_blocks(f"⛔ {text}"), translate(language, "{company}: the approver declined", company=name)
    if note is Note.EXPIRED:
        text = translate(
            language,
            "The approval link expired unused ({requester}: press *Resend link* on the card, or *Change approver*).",
            requester=requester,
        )
        return note_blocks(f"⏰ {text}"), translate(language, "{company}: the approval link expired", company=name)
    if note is Note.SNOOZE_OVER:
        by = mention(str(facts.get("by") or ""))
        text = translate(language, "The snooze {by} set is over and the problem above is still open.", by=by)
        return note_blocks(f"⏰ {text}"), translate(
            language, "{company}: a snoozed problem is still open", company=name
        )
    if note is Note.FIRST_SYNC:
        text = translate(language, "First sync done: {summary}.", summary=summary)
        return note_blocks(f"📥 {text}"), translate(language, "{company}: first sync done", company=name)
    if note is Note.RECOVERED:
        text = translate(language, "Visma answers again; the sync caught up ({summary}).", summary=summary)
        return note_blocks(f"✅ {text}"), translate(language, "{company}: the sync works again", company=name)
    since, upcoming = facts.get("since"), facts.get("next_try")
    failing = Failing(
        since=datetime.fromisoformat(since) if since else None,
        reason=facts.get("reason"),
        next_try=datetime.fromisoformat(upcoming) if upcoming else None,
    )
    return note_blocks(failure_line(failing, system_label)), f"{name}: Visma is not answering"


def note_blocks(text: str) -> list[Block]:
    """A short thread note (approval received, sync finished, link resent)."""
    return [SectionBlock(text=MarkdownTextObject(text=text))]


def notice_view(text: str) -> View:
    """A modal that only says something (a button pressed inside a modal answers in place)."""
    return View(
        type="modal", title="Add a company", close="Close", blocks=[SectionBlock(text=MarkdownTextObject(text=text))]
    )


def change_approver_view(*, company_name: str, ref: ButtonRef) -> View:
    """Who approves instead: a person in Slack, or an e-mail (the new link goes to them; old links stop)."""
    return View(
        type="modal",
        callback_id=CardView.CHANGE_APPROVER,
        title="Change approver",
        submit="Send new link",
        close="Cancel",
        private_metadata=ref.encode(),
        blocks=[
            SectionBlock(
                text=MarkdownTextObject(
                    text=f"Who approves *{escape(company_name)}* instead? They get a new approval link; "
                    "earlier links stop working."
                )
            ),
            *approver_inputs(),
        ],
    )
