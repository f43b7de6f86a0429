"""The install files (README, Dockerfile, compose.yaml, .dockerignore) stay true to the code they describe."""

from __future__ import annotations

import fnmatch
import json
import re
import tomllib

import httpx
import pytest
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from sqlalchemy.engine import make_url
from starlette.routing import Match

from bot import cli
from bot.app import create_app
from bot.connect import callback_path
from bot.domain.types import AccountingSystem
from bot.settings import Settings
from bot.visma.base import Grant
from bot.web import pages
from tests.conftest import REPO, make_settings

README = (REPO / "README.md").read_text()
FIELDS = {name.upper() for name in Settings.model_fields}
REQUIRED = {name.upper() for name, field in Settings.model_fields.items() if field.is_required()}
# Names the README may write like settings that are not the bot's, each with where it belongs.
NOT_SETTINGS = {
    "LOCK_FLAGS": "a make variable of `make lock`",
    "POSTGRES_PASSWORD": "compose.yaml's database password, read from .env by compose",
    "TEST_POSTGRES_URL": "the PostgreSQL server of the store and scenario tests",
}
ENV_NAME = r"[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+"


# ---------------------------------------------------------------------------------------------- README, parsed


def code_blocks(text: str) -> list[str]:
    """The fenced code blocks' contents."""
    return re.findall(r"^ *```[^\n]*\n(.*?)^ *```", text, flags=re.MULTILINE | re.DOTALL)


def inline_code(text: str) -> list[str]:
    """Inline code spans outside fenced blocks."""
    prose = re.sub(r"^ *```[^\n]*\n.*?^ *```", "", text, flags=re.MULTILINE | re.DOTALL)
    return re.findall(r"`([^`\n]+)`", prose)


def table_names(text: str) -> set[str]:
    """Setting names in the first cell of the README's table rows (`NAME` or `NAME`, `NAME2`)."""
    names: set[str] = set()
    for line in text.splitlines():
        if line.startswith("| "):
            first = line.split("|")[1]
            names |= {name for name in re.findall(r"`([^`]+)`", first) if re.fullmatch(r"[A-Z][A-Z0-9_]+", name)}
    return names


def assigned_names(text: str) -> set[str]:
    """Every NAME= in code blocks and inline code (the .env examples, `ENCRYPTION_KEY=new,old` …)."""
    spans = [*code_blocks(text), *inline_code(text)]
    return {name for span in spans for name in re.findall(r"\b([A-Z][A-Z0-9_]+)=", span)}


def env_example() -> set[str]:
    """The names set in the README's .env example (the code block that sets FIRM_NAME)."""
    blocks = [block for block in code_blocks(README) if re.search(r"^FIRM_NAME=", block, flags=re.MULTILINE)]
    assert len(blocks) == 1, "the README should have one .env example, the block that sets FIRM_NAME"
    return set(re.findall(r"^([A-Z][A-Z0-9_]+)=", blocks[0], flags=re.MULTILINE))


def test_the_readme_parsers_find_what_they_should():
    assert {"SLACK_BOT_TOKEN", "VISMA_CLIENT_ID", "VISMA_CLIENT_SECRET", "PORT", "TIMEZONE"} <= table_names(README)
    assert "ENCRYPTION_KEY" in assigned_names(README)  # `ENCRYPTION_KEY=new,old`, inline
    assert any("reverse_proxy 127.0.0.1:3000" in block for block in code_blocks(README))  # an indented block
    assert "ALERT_CHANNEL" not in " ".join(code_blocks("  ```\n  FOO=1\n  ```\n`ALERT_CHANNEL`"))
    assert table_names("| `NOT_A_NAME` | x |\n| `sync_budget.py` | y |") == {"NOT_A_NAME"}


def test_the_names_allowed_besides_settings_are_not_settings():
    assert not set(NOT_SETTINGS) & FIELDS


def test_every_setting_in_the_readme_tables_is_a_setting():
    assert table_names(README) - FIELDS == set()


def test_every_setting_is_in_the_configuration_table():
    assert FIELDS - table_names(README) == set()


def test_every_name_the_readme_assigns_is_a_setting():
    assert assigned_names(README) - FIELDS - set(NOT_SETTINGS) == set()


def test_every_environment_name_the_readme_writes_is_a_setting():
    written = {span for span in inline_code(README) if re.fullmatch(ENV_NAME, span)}
    assert written - FIELDS - set(NOT_SETTINGS) == set()


def test_the_env_example_sets_every_required_setting():
    example = env_example()
    assert REQUIRED - example == set()
    assert example <= FIELDS


def test_every_onboarding_bot_command_in_the_readme_exists(capsys):
    named = set(re.findall(r"onboarding-bot ([a-z][a-z-]*)", README))
    assert {"serve", "doctor", "migrate", "rotate-key", "simulate"} <= named
    for command in sorted(named):
        with pytest.raises(SystemExit) as exited:
            cli.main([command, "--help"])
        assert exited.value.code == 0, f"onboarding-bot {command} is not a command"
    capsys.readouterr()


def manifest_urls(node: object) -> list[str]:
    """Every value of a key ending in `url` in the Slack app manifest."""
    if isinstance(node, dict):
        return [
            url
            for key, value in node.items()
            for url in ([value] if key.endswith("url") and isinstance(value, str) else manifest_urls(value))
        ]
    if isinstance(node, list):
        return [url for item in node for url in manifest_urls(item)]
    return []


def test_the_manifest_has_the_four_urls_the_readme_tells_to_change():
    urls = manifest_urls(yaml.safe_load((REPO / "app.yaml").read_text()))
    assert len(urls) == 4
    assert set(urls) == {"https://bot.example.com/slack/events"}
    assert "in all four URLs" in README
    assert "delete the four lines that hold a URL" in README


# ----------------------------------------------------------------------------------------- routes the app serves


@pytest.fixture(scope="module")
def app():
    """The app `serve` runs, with every Visma system configured; built, never started."""
    settings = make_settings(visma_client_id="isv_fjordbris", visma_client_secret="secret")
    return create_app(settings, http=httpx.AsyncClient(), migrate=False)


def served(app, method: str, path: str) -> list[object]:
    """The endpoints that answer `method path` in full."""
    scope = {"type": "http", "method": method, "path": path}
    return [route.endpoint for route in app.routes if route.matches(scope)[0] is Match.FULL]


def test_served_tells_routes_from_non_routes(app):
    assert served(app, "GET", "/healthz")
    assert not served(app, "GET", "/oauth/eaccounting")
    assert not served(app, "POST", "/healthz")


def test_every_callback_the_readme_names_is_the_apps_callback(app):
    named = set(re.findall(r"/oauth/([a-z_]+)/callback", README))
    assert named
    for system in named:
        assert system in {known.value for known in AccountingSystem}, f"/oauth/{system}/callback: no such system"
        path = f"/oauth/{system}/callback"
        assert served(app, "GET", path) == [pages.oauth_callback], f"{path} is not the OAuth callback"
        assert path == "/" + callback_path(system), f"the bot sends Visma another redirect URI than {path}"


def test_the_readme_names_the_callback_of_every_system_that_consents(app):
    consenting = {system.value for system, module in app.state.deps.systems.items() if module.grant is Grant.CONSENT}
    assert consenting == {AccountingSystem.EACCOUNTING.value, AccountingSystem.VISMA_ERP.value}
    named = set(re.findall(r"/oauth/([a-z_]+)/callback", README))
    assert consenting <= named


def test_every_method_and_path_the_readme_names_is_served(app):
    pairs = set(re.findall(r"\b(GET|POST) (/[\w/{}.-]*\w)", README))
    assert ("GET", "/healthz") in pairs
    for method, path in pairs:
        assert served(app, method, path), f"the app does not serve {method} {path}"


# ------------------------------------------------------------------------------------------------------ Dockerfile


def dockerfile() -> list[tuple[str, str]]:
    """The Dockerfile's instructions as (INSTRUCTION, arguments), continuation lines joined."""
    text = re.sub(r"\\\n", " ", (REPO / "Dockerfile").read_text())
    lines = [line.strip() for line in text.splitlines()]
    return [
        (line.split(None, 1)[0].upper(), line.split(None, 1)[1] if " " in line else "")
        for line in lines
        if line and not line.startswith("#")
    ]


def test_the_image_starts_from_python_311_slim():
    assert next(args for op, args in dockerfile() if op == "FROM") == "python:3.11-slim"


def test_the_image_installs_the_lock_with_hashes_then_the_project_without_deps():
    runs = [args for op, args in dockerfile() if op == "RUN"]
    lock = [i for i, run in enumerate(runs) if "pip install" in run and "--require-hashes" in run]
    assert lock, "no RUN installs with --require-hashes"
    assert re.search(r"-r requirements\.lock\b", runs[lock[0]])
    project = [i for i, run in enumerate(runs) if "pip install" in run and "--no-deps" in run]
    assert project
    assert project[0] > lock[0]
    assert re.search(r"--no-deps --no-build-isolation \.(\s|$)", runs[project[0]])
    copies = [args for op, args in dockerfile() if op == "COPY"]
    assert any(args.split()[0] == "requirements.lock" for args in copies)


def test_every_pin_in_the_lock_has_a_hash():
    # pip refuses the whole file under --require-hashes when one requirement lacks a hash.
    lines = (REPO / "requirements.lock").read_text().splitlines()
    pins = [i for i, line in enumerate(lines) if line and not line.startswith((" ", "#"))]
    assert len(pins) > 20
    for i in pins:
        assert "==" in lines[i], lines[i]
        assert lines[i + 1].strip().startswith("--hash=sha256:"), f"{lines[i]} has no hash"


def test_the_lock_pins_every_dependency_of_the_project():
    # The image (and make) install only what the lock pins: a dependency added to pyproject.toml without
    # `make lock` is missing at run time (an ImportError at start), however well the tests run in a dev venv.
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    wanted = {canonicalize_name(Requirement(spec).name) for spec in project["dependencies"]}
    wanted |= {canonicalize_name(Requirement(spec).name) for spec in project["optional-dependencies"]["dev"]}
    text = (REPO / "requirements.lock").read_text()
    pinned = {canonicalize_name(name) for name in re.findall(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==", text, re.MULTILINE)}
    assert wanted - pinned == set(), "run `make lock` and commit requirements.lock"


def test_the_image_copies_everything_the_project_build_needs():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())
    sources = {part for op, args in dockerfile() if op == "COPY" for part in args.split()[:-1]}
    packages = {pattern.rstrip("*") for pattern in project["tool"]["setuptools"]["packages"]["find"]["include"]}
    assert packages <= sources
    assert {"pyproject.toml", project["project"]["readme"]} <= sources


def test_the_image_runs_as_a_user_it_created_not_root():
    instructions = dockerfile()
    users = [(i, args.split(":")[0]) for i, (op, args) in enumerate(instructions) if op == "USER"]
    assert users, "the image runs as root"
    position, user = users[-1]
    assert user not in {"root", "0"}
    created = " ".join(args for op, args in instructions[:position] if op == "RUN")
    assert re.search(rf"useradd\b[^&;]*\s{re.escape(user)}(\s|$)", created) or f"--uid {user}" in created
    cmd = max(i for i, (op, _) in enumerate(instructions) if op == "CMD")
    assert position < cmd


def test_the_image_serves_on_every_interface(capsys):
    cmd = json.loads(next(args for op, args in reversed(dockerfile()) if op == "CMD"))
    assert cmd == ["onboarding-bot", "serve", "--host", "0.0.0.0"]  # noqa: S104 (the container's interface)
    project = tomllib.loads((REPO / "pyproject.toml").read_text())
    assert project["project"]["scripts"]["onboarding-bot"] == "bot.cli:main"
    with pytest.raises(SystemExit):
        cli.main(["serve", "--help"])
    assert "--host" in capsys.readouterr().out


def test_the_health_check_asks_a_route_the_app_serves(app):
    instructions = dockerfile()
    checks = [args for op, args in instructions if op == "HEALTHCHECK"]
    assert len(checks) == 1
    paths = re.findall(r"'(/[a-z/]+)'", checks[0])
    assert paths == ["/healthz"]
    assert served(app, "GET", paths[0])
    # It asks the port the bot listens on: PORT when set, else the setting's default, which EXPOSE names too.
    assert "os.environ.get('PORT', '3000')" in checks[0]
    assert Settings.model_fields["port"].default == 3000
    assert [args for op, args in instructions if op == "EXPOSE"] == ["3000"]


def test_dockerignore_keeps_secrets_and_local_state_out_but_not_what_the_image_copies():
    patterns = [
        line.strip() for line in (REPO / ".dockerignore").read_text().splitlines() if line.strip() and line[0] != "#"
    ]
    assert {".env", ".venv", ".git", "*.db"} <= set(patterns)
    assert any(pattern.endswith("__pycache__") for pattern in patterns)
    assert {".pytest_cache", ".mypy_cache", ".ruff_cache"} <= set(patterns)
    sources = {part for op, args in dockerfile() if op == "COPY" for part in args.split()[:-1]}
    for source in sources:
        assert not any(fnmatch.fnmatch(source, pattern) for pattern in patterns), f"{source} is ignored"


# ---------------------------------------------------------------------------------------------------- compose.yaml

COMPOSE_TEXT = (REPO / "compose.yaml").read_text()


@pytest.fixture(scope="module")
def compose():
    return yaml.safe_load(COMPOSE_TEXT)


def interpolate(value: str) -> str:
    """Compose's ${NAME}, ${NAME:-default} and ${NAME:?error}, with test values."""

    def one(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(3)
        if name == "POSTGRES_PASSWORD":
            return "s3cret"
        return default if match.group(2) == ":-" else ""

    return re.sub(r"\$\{([A-Z_][A-Z0-9_]*)(?:(:-|:\?)([^}]*))?\}", one, value)


def postgres(compose) -> tuple[str, dict]:
    found = [(name, s) for name, s in compose["services"].items() if str(s.get("image", "")).startswith("postgres")]
    assert len(found) == 1, "compose.yaml should have one postgres service"
    return found[0]


def bot(compose) -> dict:
    found = [s for s in compose["services"].values() if "build" in s]
    assert len(found) == 1, "compose.yaml should build one service, the bot"
    return found[0]


def environment(service: dict) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {name: str(value) for name, value in env.items()}


def test_compose_postgres_has_a_health_check_and_a_named_volume(compose):
    _, db = postgres(compose)
    check = db["healthcheck"]["test"]
    assert "pg_isready" in (check if isinstance(check, str) else " ".join(check))
    volumes = [str(volume).split(":") for volume in db["volumes"]]
    named = [source for source, *_ in volumes if not source.startswith((".", "/", "~"))]
    assert named
    assert set(named) <= set(compose.get("volumes") or {})
    # postgres:17 and older keep their data here (18 moved it to /var/lib/postgresql).
    assert [target for source, target, *_ in volumes if source in named] == ["/var/lib/postgresql/data"]


def test_compose_bot_waits_for_a_healthy_postgres(compose):
    name, _ = postgres(compose)
    assert bot(compose)["depends_on"][name]["condition"] == "service_healthy"


def test_compose_bot_reads_dot_env_and_names_only_settings(compose):
    service = bot(compose)
    env_files = service["env_file"]
    assert ".env" in ([env_files] if isinstance(env_files, str) else env_files)
    assert set(environment(service)) - FIELDS == set()


def test_compose_interpolates_only_settings_and_the_database_password():
    names = set(re.findall(r"\$\{([A-Z_][A-Z0-9_]*)", COMPOSE_TEXT))
    assert "POSTGRES_PASSWORD" in names
    assert names - FIELDS - {"POSTGRES_PASSWORD"} == set()


def test_compose_database_url_is_its_postgres_and_a_valid_setting(compose):
    name, db = postgres(compose)
    url_text = interpolate(environment(bot(compose))["DATABASE_URL"])
    url = make_url(url_text)
    db_env = {key: interpolate(value) for key, value in environment(db).items()}
    assert url.drivername == "postgresql"
    assert (url.host, url.username, url.password, url.database) == (
        name,
        db_env["POSTGRES_USER"],
        db_env["POSTGRES_PASSWORD"],
        db_env["POSTGRES_DB"],
    )
    check = " ".join(db["healthcheck"]["test"])
    assert f"-U {db_env['POSTGRES_USER']}" in check
    assert f"-d {db_env['POSTGRES_DB']}" in check
    assert make_settings(database_url=url_text).database_url == url_text


def test_compose_publishes_the_port_the_bot_listens_on(compose):
    ports = [interpolate(str(port)) for port in bot(compose)["ports"]]
    assert ports == [f"127.0.0.1:{Settings.model_fields['port'].default}:{Settings.model_fields['port'].default}"]


def test_the_services_the_readme_runs_are_in_compose(compose):
    named = set(re.findall(r"docker compose (?:run --rm|logs -f|exec) ([\w-]+)", README))
    assert named
    assert named <= set(compose["services"])
