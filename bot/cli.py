"""`onboarding-bot`: serve the bot, run the simulators, or migrate the database."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys

import uvicorn

from bot import logs
from bot.settings import SettingsError, load_settings
from bot.store.engine import migrate


def main(argv: list[str] | None = None) -> int:
    """Entry point of the console script."""
    parser = argparse.ArgumentParser(prog="onboarding-bot", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the bot: Slack endpoint, approval pages, OAuth callback, schedule")
    serve.add_argument("--host", default="127.0.0.1", help="interface to listen on (0.0.0.0 in a container)")
    simulate = sub.add_parser("simulate", help="run the Visma and Slack simulators on loopback")
    simulate.add_argument("--port", type=int, default=8790)
    sub.add_parser("migrate", help="bring the database schema up to date (serve does this by itself)")
    args = parser.parse_args(argv)
    logs.configure()

    if args.command == "simulate":
        from bot.simulators.server import run_simulators

        asyncio.run(run_simulators(port=args.port))
        return 0
    try:
        settings = load_settings()
    except SettingsError as exc:
        print(f"onboarding-bot: configuration error: {exc}", file=sys.stderr)
        return 2
    if args.command == "migrate":
        migrate(settings.database_url)
        logging.getLogger(__name__).info("database is up to date")
        return 0
    from bot.app import create_app

    config = uvicorn.Config(
        create_app(settings),
        host=args.host,
        port=settings.port,
        log_config=None,
        access_log=False,
        lifespan="on",
    )
    uvicorn.Server(config).run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
