"""`onboarding-bot`: serve the bot, run the simulators, migrate the database, or re-encrypt its secrets."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys

import uvicorn

from bot import doctor, logs
from bot.crypto import Vault
from bot.settings import Settings, SettingsError, load_settings
from bot.store.engine import Store, migrate
from bot.store.rekey import UNDECRYPTABLE, rotate_keys


def main(argv: list[str] | None = None) -> int:
    """Entry point of the console script."""
    parser = argparse.ArgumentParser(prog="onboarding-bot", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the bot: Slack endpoint, approval pages, OAuth callback, schedule")
    serve.add_argument("--host", default="127.0.0.1", help="interface to listen on (0.0.0.0 in a container)")
    simulate = sub.add_parser("simulate", help="run the Visma and Slack simulators on loopback")
    simulate.add_argument("--port", type=int, default=8790)
    simulate.add_argument(
        "--with-bot", action="store_true", help="also run the bot against them (a fresh database), for the console"
    )
    simulate.add_argument("--bot-port", type=int, default=3000, help="the bot's port, where the console sends to")
    sub.add_parser("migrate", help="bring the database schema up to date (serve does this by itself)")
    sub.add_parser("doctor", help="check the settings, the database, Slack, the alert channel and the Visma URLs")
    sub.add_parser(
        "rotate-key",
        help="re-encrypt the stored secrets with the first ENCRYPTION_KEY key, so that the others can be removed",
    )
    args = parser.parse_args(argv)
    logs.configure()

    if args.command == "simulate":
        from bot.simulators.server import run_simulators

        try:
            return asyncio.run(run_simulators(port=args.port, with_bot=args.with_bot, bot_port=args.bot_port))
        except KeyboardInterrupt:
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
    if args.command == "rotate-key":
        return asyncio.run(_rotate_key(settings))
    if args.command == "doctor":
        findings = asyncio.run(doctor.run(settings))
        print("ok  settings: every required setting is there and well-formed")
        for finding in findings:
            print(finding)
        return 0 if all(finding.ok for finding in findings) else 1
    failed = asyncio.run(doctor.before_serve(settings, host=args.host))
    if failed is not None:
        print(f"onboarding-bot: cannot start: {failed.name}: {failed.line}", file=sys.stderr)
        return 2
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


async def _rotate_key(settings: Settings) -> int:
    store = Store(settings.database_url)
    try:
        counts = await rotate_keys(store, Vault(settings.encryption_key.get_secret_value()))
    finally:
        await store.close()
    undecryptable = counts.pop(UNDECRYPTABLE)
    print(
        f"re-encrypted {_secrets(sum(counts.values()))} with the first ENCRYPTION_KEY key; the other keys can be "
        "removed once every process runs with the new setting"
    )
    if undecryptable:
        print(
            f"onboarding-bot: left {_secrets(undecryptable)} unchanged that none of the ENCRYPTION_KEY keys opens: "
            "add the key they were sealed with and run rotate-key again, or reconnect those companies",
            file=sys.stderr,
        )
        return 1
    return 0


def _secrets(count: int) -> str:
    return f"{count} secret" if count == 1 else f"{count} secrets"


if __name__ == "__main__":
    sys.exit(main())
