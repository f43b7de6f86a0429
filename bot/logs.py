"""Logging set-up, with a filter that redacts anything shaped like a token before it is written."""

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


def redact(text: str) -> str:
    """Replace token-shaped substrings with a marker."""
    for pattern in _PATTERNS:
        if pattern.groups:
            text = pattern.sub(lambda match: "".join(match.groups()) + "[redacted]", text)
        else:
            text = pattern.sub("[redacted]", text)
    return text


class RedactingFilter(logging.Filter):
    """Formats each record, then redacts it, so no secret reaches a handler through args or exceptions."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Rewrite the record's message in place; never drops a record."""
        message = record.getMessage()
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        record.msg = redact(message)
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
