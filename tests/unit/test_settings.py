import pytest

from bot.settings import SettingsError, load_settings
from tests.conftest import make_settings

REQUIRED = {
    "SLACK_BOT_TOKEN": "xoxb-1",
    "SLACK_SIGNING_SECRET": "s",
    "ALERT_CHANNEL": "C0ALERTS",
    "ENCRYPTION_KEY": "x" * 43 + "=",
    "EACCOUNTING_CLIENT_ID": "id",
    "EACCOUNTING_CLIENT_SECRET": "secret",
    "FIRM_NAME": "Fjordbris Regnskap",
}


@pytest.fixture
def env(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)  # no stray .env
    for name in [*REQUIRED, "DATABASE_URL", "PUBLIC_URL"]:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_a_missing_setting_is_named_in_one_line(env):
    for name, value in REQUIRED.items():
        if name != "SLACK_SIGNING_SECRET":
            env.setenv(name, value)
    with pytest.raises(SettingsError) as caught:
        load_settings()
    assert str(caught.value) == "SLACK_SIGNING_SECRET is not set (see README, Configuration)"


@pytest.mark.parametrize(
    ("name", "value", "says"),
    [
        ("ENCRYPTION_KEY", "too-short", "Fernet key"),
        ("ALERT_CHANNEL", "#onboarding", "channel ID"),
        ("PUBLIC_URL", "not a url", "PUBLIC_URL is malformed"),
        ("PUBLIC_URL", "http://bot.example.com", "in the clear"),
        ("PUBLIC_URL", "http://10.0.0.5:3000", "https://"),
        ("DATABASE_URL", "mysql://x", "sqlite:// or postgresql://"),
        ("PORT", "99999", "PORT is malformed"),
    ],
)
def test_a_malformed_setting_is_named(env, name, value, says):
    for key, good in REQUIRED.items():
        env.setenv(key, good)
    env.setenv("ENCRYPTION_KEY", "q5G0Xv1cJ1m3xQ2Vv5o4Rr0jv9YQe8e6l0lq3Y2o9mE=")
    env.setenv(name, value)
    with pytest.raises(SettingsError, match=says) as caught:
        load_settings()
    assert "\n" not in str(caught.value)
    assert name in str(caught.value)


def test_secrets_do_not_show_in_repr():
    settings = make_settings()
    assert "xoxb-test-bot-token" not in repr(settings)
    assert "test-client-secret" not in repr(settings)


@pytest.mark.parametrize(
    "url", ["https://bot.example.com", "http://localhost:3000", "http://127.0.0.1:3000", "http://[::1]:3000"]
)
def test_https_or_a_loopback_address_is_a_public_url(env, url):
    for key, good in REQUIRED.items():
        env.setenv(key, good)
    env.setenv("ENCRYPTION_KEY", "q5G0Xv1cJ1m3xQ2Vv5o4Rr0jv9YQe8e6l0lq3Y2o9mE=")
    env.setenv("PUBLIC_URL", url)
    assert load_settings().url("approve/x").endswith("/approve/x")
