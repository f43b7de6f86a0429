"""app.yaml is the one source of truth for commands, scopes, events and URLs: check it against Slack's schema."""

import json

import pytest
import yaml

import commands.addcompany.ids
from bot.app import FLOWS
from tests.conftest import REPO, SPECS

SCHEMA_DIR = SPECS / "slack-manifest-schema"
REMOTE = "https://raw.githubusercontent.com/slackapi/manifest-schema/v0.5.0/schemas/"


def manifest():
    return yaml.safe_load((REPO / "app.yaml").read_text())


@pytest.fixture
def validator():
    if not (SCHEMA_DIR / "manifest.schema.json").exists():
        pytest.skip(f"Slack's manifest schema is not present at {SCHEMA_DIR} (no ../shared beside this clone)")
    from jsonschema import Draft7Validator
    from referencing import Registry, Resource

    registry = Registry()
    for version in ("1.0.0", "2.0.0"):
        schema = json.loads((SCHEMA_DIR / f"manifest.schema.{version}.json").read_text())
        registry = registry.with_resource(f"{REMOTE}manifest.schema.{version}.json", Resource.from_contents(schema))
    root = json.loads((SCHEMA_DIR / "manifest.schema.json").read_text())
    return Draft7Validator(root, registry=registry)


def test_app_yaml_is_a_valid_slack_manifest(validator):
    errors = sorted(validator.iter_errors(manifest()), key=str)
    assert errors == [], "\n".join(error.message for error in errors)


def test_the_schema_check_really_checks(validator):
    broken = manifest()
    broken["features"]["slash_commands"][0]["command"] = "addcompany without slash"
    broken["oauth_config"]["scopes"]["bot"].append(123)
    assert list(validator.iter_errors(broken))


def test_manifest_commands_are_the_registered_ones():
    declared = {item["command"] for item in manifest()["features"]["slash_commands"]}
    registered = {flow.ids.COMMAND for flow in FLOWS if hasattr(getattr(flow, "ids", None), "COMMAND")}
    assert registered == {commands.addcompany.ids.COMMAND}
    assert declared == registered


def test_every_request_url_is_the_bolt_endpoint():
    settings = manifest()["settings"]
    urls = [
        settings["event_subscriptions"]["request_url"],
        settings["interactivity"]["request_url"],
        settings["interactivity"]["message_menu_options_url"],
        *(item["url"] for item in manifest()["features"]["slash_commands"]),
    ]
    assert all(url.endswith("/slack/events") for url in urls)
    assert manifest()["settings"]["event_subscriptions"]["bot_events"] == ["app_home_opened"]
