"""Logging set-up, with a filter that redacts token-shaped text and keeps every record on one line."""

from __future__ import annotations

import logging
import re
from typing import IO

_PATTERNS = [
    re.compile(r"xox[abposr]-[A-Za-z0-9-]+"),
    re.compile(r"xapp-[A-Za-z0-9-]+"),
    re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._~+/=-]+"),
    re.compile(
        r"(?i)((?:access|refresh|id)_token|code|code_verifier|client_secret|state|token)"
        r"([\"']?\s*[=:]\s*[\"']?)[A-Za-z0-9._~+/=-]{8,}"
    ),
    re.compile(r"(/approve/)[A-Za-z0-9_-]{16,}"),
]
# C0 and C1 controls (newline, carriage return, escape, NEL…), the Unicode line and paragraph separators that
# some log viewers break lines on, and the bidi overrides that can make a line read as something else.
_CONTROLS = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
# A traceback is ours and stays multi-line, but every line of it is indented: a line that starts in column 0
# always starts a record, so an exception message cannot pass a line of its own off as one.
_TRACEBACK_INDENT = "    "
# Bolt logs a whole request body (signature included) at INFO when a signature does not verify, and hands its
# loggers the payloads of requests it does not expect.
_CHATTY_LOGGERS = ("slack_bolt",)


def redact(text: str) -> str:
    """Replace token-shaped substrings with a marker."""
    for pattern in _PATTERNS:
        if pattern.groups:
            text = pattern.sub(lambda match: "".join(match.groups()) + "[redacted]", text)
        else:
            text = pattern.sub("[redacted]", text)
    return text


def escape_controls(text: str) -> str:
    """Write control characters as escapes (a newline as backslash-n), so the text stays on one line."""
    return _CONTROLS.sub(_escape, text)


def _escape(match: re.Match[str]) -> str:
    return match.group().encode("unicode_escape").decode("ascii")


def _indented(block: str) -> str:
    """A multi-line block (a traceback) with each line escaped and indented; indenting twice is a no-op."""
    if block.startswith(_TRACEBACK_INDENT):
        return block
    return "\n".join(_TRACEBACK_INDENT + escape_controls(line) for line in block.split("\n"))


def _message(record: logging.LogRecord) -> str:
    """The record's message; a call whose arguments do not fit its format still logs, instead of raising."""
    try:
        return record.getMessage()
    except (TypeError, ValueError, KeyError):
        # A filter runs outside the handler's error handling, so raising here would raise in the caller.
        return f"{record.msg!r} (unformattable arguments: {record.args!r})"


class RedactingFilter(logging.Filter):
    """Formats each record, then redacts and escapes it, so no secret and no forged line reaches a handler."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Rewrite the record's message in place; never drops a record."""
        message = _message(record)
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = _indented(redact(record.exc_text))
        record.msg = escape_controls(redact(message))
        record.args = None
        return True


def redacting_handler(stream: IO[str] | None = None) -> logging.Handler:
    """A stream handler (stderr by default) that redacts every record it writes."""
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(RedactingFilter())
    return handler


def configure(level: int = logging.INFO) -> None:
    """Log to stderr through the redacting filter."""
    root = logging.getLogger()
    root.handlers[:] = [redacting_handler()]
    root.setLevel(level)
    # uvicorn's access log prints request paths, approval tokens included; ours is quieter and redacted.
    for name in ("uvicorn", "uvicorn.access", "uvicorn.error"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    for name in _CHATTY_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
