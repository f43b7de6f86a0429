"""Log records cannot be forged: one record is one line, and secrets stay redacted."""

from __future__ import annotations

import io
import logging

import pytest

from bot import logs


@pytest.fixture
def written():
    """A logger writing through the redacting handler into a string."""
    stream = io.StringIO()
    logger = logging.getLogger("tests.logs")
    handler = logs.redacting_handler(stream)
    logger.addHandler(handler)
    logger.propagate = False
    yield logger, stream
    logger.removeHandler(handler)
    logger.propagate = True


def test_a_forged_line_in_an_argument_stays_inside_its_record(written):
    logger, stream = written
    logger.warning("company %s not found", "Fjordbris\n2026-01-01 INFO forged")
    output = stream.getvalue()
    assert output.count("\n") == 1
    assert output.endswith("company Fjordbris\\n2026-01-01 INFO forged not found\n")


@pytest.mark.parametrize(
    ("control", "escaped"),
    [("\r", "\\r"), ("\x1b[2J", "\\x1b[2J"), ("\u2028", "\\u2028"), ("\x85", "\\x85"), ("\x00", "\\x00")],
)
def test_other_control_characters_are_escaped(written, control, escaped):
    logger, stream = written
    logger.warning("name=%s", f"a{control}b")
    assert stream.getvalue().splitlines() == [stream.getvalue().rstrip("\n")]
    assert f"name=a{escaped}b" in stream.getvalue()


def test_secrets_are_still_redacted_and_the_line_still_escaped(written):
    logger, stream = written
    logger.warning("callback %s", "code=abcdef123456789\nBearer eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9")
    output = stream.getvalue()
    assert "abcdef123456789" not in output
    assert "eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9" not in output
    assert "[redacted]" in output
    assert output.count("\n") == 1


def test_a_traceback_stays_multi_line_indented_and_redacted(written):
    logger, stream = written
    try:
        raise RuntimeError("Bearer abcdefghijklmnop\n2026-01-01 INFO forged")
    except RuntimeError:
        logger.exception("refresh failed")
    first, *rest = stream.getvalue().rstrip("\n").split("\n")
    assert first.endswith("refresh failed")
    assert len(rest) > 2
    assert all(line.startswith("    ") for line in rest)
    assert "abcdefghijklmnop" not in stream.getvalue()
    assert "Traceback (most recent call last):" in rest[0]


def test_filtering_a_record_twice_changes_nothing():
    record = logging.LogRecord("t", logging.ERROR, __file__, 1, "bad %s", ("x\ny",), None)
    try:
        raise ValueError("boom")
    except ValueError:
        import sys

        record.exc_info = sys.exc_info()
    assert logs.RedactingFilter().filter(record)
    once = (record.getMessage(), record.exc_text)
    assert logs.RedactingFilter().filter(record)
    assert (record.getMessage(), record.exc_text) == once


def test_a_call_whose_arguments_do_not_fit_still_logs(written):
    logger, stream = written
    logger.warning("two %s %s", "one")
    assert "two %s %s" in stream.getvalue()


def test_configure_quiets_bolt(monkeypatch):
    root = logging.getLogger()
    bolt = logging.getLogger("slack_bolt")
    monkeypatch.setattr(root, "handlers", list(root.handlers))
    monkeypatch.setattr(root, "level", root.level)
    monkeypatch.setattr(bolt, "level", bolt.level)
    for name in ("uvicorn", "uvicorn.access", "uvicorn.error"):
        logger = logging.getLogger(name)
        monkeypatch.setattr(logger, "handlers", list(logger.handlers))
        monkeypatch.setattr(logger, "propagate", logger.propagate)
    logs.configure()
    assert not logging.getLogger("slack_bolt.AsyncRequestVerification").isEnabledFor(logging.INFO)
    assert logging.getLogger("slack_bolt.AsyncApp").isEnabledFor(logging.WARNING)
