# The bot's image: exactly the versions pinned in requirements.lock, each file checked against its hash, then the
# project itself without resolving anything (as the Makefile does). See README, "Installing it in your workspace".
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore

WORKDIR /src
COPY requirements.lock ./
RUN python -m pip install --require-hashes -r requirements.lock

# Built with the setuptools the lock pinned; the sources are not kept in the image.
COPY pyproject.toml README.md ./
COPY bot ./bot
COPY commands ./commands
RUN python -m pip install --no-deps --no-build-isolation . \
    && cd / && rm -rf /src

# Not root. /app is the working directory: a `.env` there is read, and the default SQLite file would be written
# there (compose.yaml uses PostgreSQL instead).
RUN groupadd --system --gid 10001 bot \
    && useradd --system --uid 10001 --gid bot --home-dir /app --create-home --shell /usr/sbin/nologin bot
WORKDIR /app
USER bot

EXPOSE 3000
# GET /healthz answers once `serve` has started (database migrated, Slack token checked).
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('PORT', '3000') + '/healthz', timeout=4)"]
CMD ["onboarding-bot", "serve", "--host", "0.0.0.0"]
