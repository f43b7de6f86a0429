"""Numbers that decide how hard the engine tries and when a quiet failure becomes a visible one."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Retries of one request: exponential backoff with jitter for failures, Visma's own wait for 429s."""

    attempts: int = 5
    initial: float = 1.0
    maximum: float = 30.0
    rate_limited_attempts: int = 20
    # The longest a request waits in total for Visma's rate limit before the run gives up and resumes later
    # from its checkpoints, freeing its place for other companies.
    rate_limited_wait: float = 300.0
    timeout: float = 20.0


# A failure nobody at the client can fix is shown on the card after this many runs in a row, or this long.
VISIBLE_AFTER_RUNS = 3
VISIBLE_AFTER = timedelta(hours=1)
# After a failed run: the first retry soon, then less and less often, never rarer than hourly.
FIRST_RETRY = timedelta(minutes=10)
LONGEST_RETRY = timedelta(hours=1)


def failure_visible(*, count: int, since: datetime | None, now: datetime) -> bool:
    """Whether a run of quiet failures has lasted long enough to show on the card."""
    return since is not None and (count >= VISIBLE_AFTER_RUNS or now - since >= VISIBLE_AFTER)


def retry_after_failure(*, count: int, now: datetime) -> datetime:
    """When to try again after `count` failed runs in a row (with jitter, so an outage's victims spread out)."""
    delay = min(FIRST_RETRY * 2 ** max(0, count - 1), LONGEST_RETRY)
    jitter = timedelta(seconds=random.uniform(0, 60))
    moment: datetime = now + delay + jitter
    return moment
