"""`doctor` and serve's start-up checks: one line per finding, never a traceback."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import tempfile

from bot import cli, doctor
from bot.simulators.serving import free_port
from bot.simulators.stack import running_stack
from tests.scenario.conftest import QUICK


async def test_doctor_finds_everything_in_order_against_the_simulators(database_url, clock):
    async with running_stack(database_url=database_url, clock=clock, **QUICK) as stack:
        settings = stack.settings.model_copy(update={"port": free_port()})
        findings = await doctor.run(settings)
    assert [finding.name for finding in findings] == ["port", "database", "slack token", "alert channel", "visma"]
    assert all(finding.ok for finding in findings), [str(finding) for finding in findings]


async def test_each_problem_is_one_line_that_says_what_to_do(database_url, clock):
    async with running_stack(database_url=database_url, clock=clock, **QUICK) as stack:
        stack.slack_world.bot_channels.discard("C0ALERTS")
        settings = stack.settings.model_copy(update={"database_url": "postgresql://nobody@127.0.0.1:1/none"})
        findings = {finding.name: finding for finding in await doctor.run(settings)}
        stack.slack_world.tokens.clear()
        refused = await doctor.slack_token(settings)
    assert not findings["database"].ok
    assert "DATABASE_URL" in findings["database"].line
    assert not findings["alert channel"].ok
    assert "/invite" in findings["alert channel"].line
    assert not refused.ok
    assert "SLACK_BOT_TOKEN" in refused.line
    for finding in [*findings.values(), refused]:
        assert "\n" not in str(finding)


async def test_serve_stops_in_one_line_when_its_port_is_taken(database_url, clock, monkeypatch, capsys):
    # serve configures logging for the process; the test's own handlers come back afterwards.
    root = logging.getLogger()
    monkeypatch.setattr(root, "handlers", list(root.handlers))
    monkeypatch.setattr(root, "level", root.level)
    async with running_stack(database_url=database_url, clock=clock, **QUICK) as stack:
        with socket.socket() as taken:
            taken.bind(("127.0.0.1", 0))
            taken.listen()
            port = taken.getsockname()[1]
            for name, value in _environment(stack.settings, port=port).items():
                monkeypatch.setenv(name, value)
            monkeypatch.chdir(tempfile.mkdtemp())
            code = await asyncio.to_thread(cli.main, ["serve"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    # (The simulators stopping in this same process log after it; serve's own answer is its one line.)
    assert [line for line in err if line.startswith("onboarding-bot:")] == [
        next(line for line in err if line.startswith("onboarding-bot: cannot start: port:"))
    ]
    assert "Traceback" not in "\\n".join(err)


def _environment(settings, *, port: int) -> dict[str, str]:
    return {
        "SLACK_BOT_TOKEN": settings.slack_bot_token.get_secret_value(),
        "SLACK_SIGNING_SECRET": settings.slack_signing_secret.get_secret_value(),
        "SLACK_API_URL": str(settings.slack_api_url),
        "ALERT_CHANNEL": settings.alert_channel,
        "DATABASE_URL": settings.database_url,
        "PUBLIC_URL": f"http://127.0.0.1:{port}",
        "FIRM_NAME": settings.firm_name,
        "PORT": str(port),
        "ENCRYPTION_KEY": settings.encryption_key.get_secret_value(),
        "EACCOUNTING_CLIENT_ID": settings.eaccounting_client_id,
        "EACCOUNTING_CLIENT_SECRET": settings.eaccounting_client_secret.get_secret_value(),
    }


async def test_simulate_prints_settings_that_serve_accepts_and_doctor_passes(tmp_path, monkeypatch):
    import sys

    from bot.settings import load_settings
    from tests.conftest import REPO

    port = free_port()
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot.cli", "simulate", "--port", str(port),
        cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(REPO)},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    try:
        printed: dict[str, str] = {}
        assert process.stdout is not None
        while True:
            line = (await asyncio.wait_for(process.stdout.readline(), 30)).decode().strip()
            if "Ctrl-C" in line or (not line and process.returncode is not None):
                break
            if "=" in line and line.split("=", 1)[0].isupper():
                name, value = line.split("=", 1)
                printed[name] = value
        monkeypatch.chdir(tmp_path)
        for name, value in printed.items():
            monkeypatch.setenv(name, value)
        monkeypatch.setenv("PORT", str(free_port()))
        settings = load_settings()  # serve loads its settings exactly so
        findings = await doctor.run(settings)
        assert all(finding.ok for finding in findings), [str(finding) for finding in findings]
    finally:
        process.terminate()
        await process.wait()
