"""Block Kit as readable plain text, for the demo's transcript of what each person sees."""

from __future__ import annotations

import re
import textwrap
from collections.abc import Mapping, Sequence
from typing import Any

WIDTH = 92
_LINK = re.compile(r"<(https?://[^|>]+)\|([^>]+)>")
_BARE_LINK = re.compile(r"<(https?://[^|>]+)>")
_MENTION = re.compile(r"<@([A-Z0-9]+)>")
_DATE = re.compile(r"<!date\^\d+\^[^|>]*\|([^>]+)>")


def mrkdwn(text: str, users: Mapping[str, str] | None = None) -> str:
    """Slack mrkdwn to plain text: links as 'label <url>', mentions as @Name, dates as their fallback."""
    names = users or {}
    text = _DATE.sub(lambda match: match.group(1), text)
    text = _BARE_LINK.sub(lambda match: match.group(1), text)
    text = _LINK.sub(lambda match: f"{match.group(2)} <{match.group(1)}>", text)
    text = _MENTION.sub(lambda match: "@" + names.get(match.group(1), match.group(1)), text)
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def _text(value: Any, users: Mapping[str, str] | None) -> str:
    if isinstance(value, Mapping):
        return mrkdwn(str(value.get("text", "")), users)
    return mrkdwn(str(value or ""), users)


def _wrap(text: str, indent: str = "") -> list[str]:
    lines: list[str] = []
    for paragraph in text.splitlines() or [""]:
        lines += textwrap.wrap(paragraph, WIDTH, initial_indent=indent, subsequent_indent=indent) or [indent]
    return lines


def _button(element: Mapping[str, Any], users: Mapping[str, str] | None) -> str:
    label = _text(element.get("text"), users)
    return f"[*{label}*]" if element.get("style") == "primary" else f"[{label}]"


def _element(element: Mapping[str, Any], users: Mapping[str, str] | None) -> str:
    kind = element.get("type", "")
    if kind == "button":
        return _button(element, users)
    if kind in {"static_select", "external_select"}:
        chosen = element.get("initial_option")
        options = [_text(option.get("text"), users) for option in element.get("options", [])]
        shown = _text(chosen["text"], users) if chosen else "choose…"
        return f"▾ {shown}   (options: {' · '.join(options)})"
    if kind in {"users_select", "multi_users_select"}:
        initial = element.get("initial_user")
        return f"▾ {'@' + (users or {}).get(initial, initial) if initial else 'pick a person…'}"
    if kind == "conversations_select":
        initial = element.get("initial_conversation")
        return f"▾ {'#' + initial if initial else 'pick a channel…'}"
    if kind == "datepicker":
        return f"📅 {element.get('initial_date', 'pick a date…')}"
    if kind in {"checkboxes", "radio_buttons"}:
        mark = "☐" if kind == "checkboxes" else "○"
        return "  ".join(f"{mark} {_text(option.get('text'), users)}" for option in element.get("options", []))
    if kind in {"plain_text_input", "email_text_input", "url_text_input", "number_input"}:
        value = element.get("initial_value")
        placeholder = _text(element.get("placeholder"), users)
        shown = value or (f"‹{placeholder}›" if placeholder else " " * 20)
        return f"[ {shown} ]" + (" (several lines)" if element.get("multiline") else "")
    return f"[{kind}]"


def _typed(state: Mapping[str, Any], element: Mapping[str, Any], users: Mapping[str, str] | None) -> str | None:
    if state.get("value") is not None:
        return f"[ {state['value']} ]"
    if state.get("selected_option"):
        value = state["selected_option"].get("value")
        labels = {option.get("value"): _text(option.get("text"), users) for option in element.get("options", [])}
        return f"▾ {labels.get(value, value)}"
    if state.get("selected_date"):
        return f"📅 {state['selected_date']}"
    if state.get("selected_user"):
        return f"▾ @{(users or {}).get(state['selected_user'], state['selected_user'])}"
    if state.get("selected_options") is not None:
        return "☑ " + ", ".join(str(option.get("value")) for option in state["selected_options"])
    return None


def render_blocks(
    blocks: Sequence[Mapping[str, Any]],
    *,
    users: Mapping[str, str] | None = None,
    errors: Mapping[str, str] | None = None,
    values: Mapping[str, Mapping[str, Mapping[str, Any]]] | None = None,
) -> str:
    """Blocks as plain-text lines; `values` (as Slack sends view state) are shown as typed, and `errors`
    (block id → message) under their input."""
    lines: list[str] = []
    for block in blocks:
        kind = block.get("type")
        if kind == "header":
            title = _text(block.get("text"), users)
            lines += [title.upper(), "═" * min(WIDTH, len(title))]
        elif kind == "section":
            if block.get("text"):
                lines += _wrap(_text(block["text"], users))
            fields = [_text(item, users) for item in block.get("fields") or []]
            for left, right in zip(fields[::2], [*fields[1::2], ""], strict=False):
                lines.append(f"{left:<45}{right}")
            if block.get("accessory"):
                lines.append("    " + _element(block["accessory"], users))
        elif kind == "context":
            lines += _wrap(" ".join(_text(item, users) for item in block.get("elements", [])), "  · ")
        elif kind == "divider":
            lines.append("─" * 40)
        elif kind == "actions":
            lines.append(" ".join(_element(element, users) for element in block.get("elements", [])))
        elif kind == "input":
            optional = " (optional)" if block.get("optional") else ""
            label = f"{_text(block.get('label'), users)}{optional}: "
            element = block.get("element", {})
            state = (values or {}).get(str(block.get("block_id")), {}).get(str(element.get("action_id")), {})
            shown = _typed(state, element, users) or _element(element, users)
            lines += textwrap.wrap(label + shown, WIDTH, subsequent_indent=" " * min(len(label), 30))
            if block.get("hint"):
                lines += _wrap(_text(block["hint"], users), "    ")
            if errors and block.get("block_id") in errors:
                warning = textwrap.wrap(errors[str(block["block_id"])], WIDTH - 6)
                lines += [f"    ⚠ {warning[0]}", *(f"      {line}" for line in warning[1:])]
        else:
            lines.append(f"[unsupported block: {kind}]")
    return "\n".join(lines)


def render_view(
    view: Mapping[str, Any],
    *,
    users: Mapping[str, str] | None = None,
    errors: Mapping[str, str] | None = None,
    values: Mapping[str, Mapping[str, Mapping[str, Any]]] | None = None,
) -> str:
    """A modal in a box: title bar, blocks (with what was typed, and errors), and its buttons."""
    title = _text(view.get("title"), users)
    body = render_blocks(view.get("blocks", []), users=users, errors=errors, values=values)
    buttons = " ".join(f"[{_text(view[key], users)}]" for key in ("close", "submit") if view.get(key))
    rule = "─" * (WIDTH + 2)
    inner = "\n".join(f"│ {line}" for line in body.splitlines())
    return f"┌{rule}\n│ {title}\n├{rule}\n{inner}\n├{rule}\n│ {buttons:>{WIDTH}}\n└{rule}"


def render_message(message: Mapping[str, Any], *, users: Mapping[str, str] | None = None) -> str:
    """A message: its blocks, or its text when it has none."""
    blocks = message.get("blocks") or []
    if blocks:
        return render_blocks(blocks, users=users)
    return "\n".join(_wrap(mrkdwn(str(message.get("text", "")), users)))
