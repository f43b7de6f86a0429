"""The one settings class, read from the environment and `.env` at the entry point."""

from __future__ import annotations

import ipaddress
from datetime import date, time, timedelta

from pydantic import AnyHttpUrl, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from bot.crypto import validate_key


class Settings(BaseSettings):
    """Everything the bot needs from outside; names are the public contract (see README)."""

    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    slack_bot_token: SecretStr
    slack_signing_secret: SecretStr
    slack_api_url: AnyHttpUrl = AnyHttpUrl("https://slack.com/api/")
    slack_app_token: SecretStr | None = None
    alert_channel: str = Field(min_length=1)
    database_url: str = "sqlite:///./onboarding.db"
    public_url: AnyHttpUrl = AnyHttpUrl("http://localhost:3000")
    port: int = Field(default=3000, ge=1, le=65535)
    # One Fernet key, or several separated by commas while keys are rotated: the first encrypts, every one
    # decrypts, and `onboarding-bot rotate-key` re-encrypts what is stored so that the others can be removed.
    encryption_key: SecretStr

    eaccounting_client_id: str = Field(min_length=1)
    eaccounting_client_secret: SecretStr
    eaccounting_identity_url: AnyHttpUrl = AnyHttpUrl("https://identity.vismaonline.com")
    eaccounting_api_url: AnyHttpUrl = AnyHttpUrl("https://eaccountingapi.vismaonline.com")

    visma_client_id: str | None = None
    visma_client_secret: SecretStr | None = None
    visma_connect_url: AnyHttpUrl = AnyHttpUrl("https://connect.visma.com")
    visma_net_api_url: AnyHttpUrl = AnyHttpUrl("https://api.finance.visma.net")
    business_nxt_api_url: AnyHttpUrl = AnyHttpUrl("https://business.visma.net/api")
    business_nxt_token_url: AnyHttpUrl = AnyHttpUrl("https://connect.visma.com/connect/token")
    # Visma.net counts requests per company and client in an hourly window whose size it does not publish;
    # the bot keeps under this and follows the X-RateLimit headers it gets back.
    visma_net_rate_limit_per_hour: int = Field(default=3000, ge=1)
    # Visma Connect client secrets are generated with an expiry date; the team is warned two weeks before.
    visma_client_secret_expires: date | None = None

    # The firm's name as clients see it on the approval pages and in DMs: no default, a made-up one would show.
    firm_name: str = Field(min_length=1)
    # The Slack user group (S…) whose members are the firm's staff; unset lets every member act (see README).
    staff_usergroup: str | None = None
    # Slack takes about one message a second per channel; the outbox keeps to it and backs off to this at most.
    slack_post_interval_seconds: float = Field(default=1.0, ge=0)
    slack_retry_max_seconds: float = Field(default=300.0, gt=0)
    approval_link_days: int = Field(default=7, ge=1, le=60)

    # The sync schedule: a nightly run in each company's slot after this local hour, and every
    # SYNC_BUSY_INTERVAL_MINUTES in the days before a VAT deadline and after a period closes.
    timezone: str = "Europe/Oslo"
    sync_nightly_hour: int = Field(default=2, ge=0, le=23)
    sync_busy_interval_minutes: int = Field(default=120, ge=5)
    sync_parallel: int = Field(default=8, ge=1, le=200)
    sync_claim_batch: int = Field(default=500, ge=1)
    sync_tick_seconds: int = Field(default=60, ge=1)
    sync_run_lease_seconds: float = Field(default=120, gt=0)
    # The team channel's daily digest: once a day at this local time (in TIMEZONE); DIGEST_ENABLED=false stops it.
    digest_enabled: bool = True
    digest_time: time = time(8, 0)

    # Visma's limits and how hard to try: eAccounting allows 600 requests a minute per endpoint URL.
    eaccounting_rate_limit: int = Field(default=600, ge=1)
    eaccounting_rate_window_seconds: float = Field(default=60.0, gt=0)
    visma_page_size: int = Field(default=500, ge=1, le=1000)
    visma_timeout_seconds: float = Field(default=20.0, gt=0)
    visma_retry_attempts: int = Field(default=5, ge=1)
    visma_retry_initial_seconds: float = Field(default=1.0, ge=0)
    visma_retry_max_seconds: float = Field(default=30.0, ge=0)
    visma_rate_limit_max_wait_seconds: float = Field(default=300.0, ge=0)

    @field_validator("encryption_key")
    @classmethod
    def _key_is_fernet(cls, value: SecretStr) -> SecretStr:
        validate_key(value.get_secret_value())
        return value

    @field_validator("alert_channel")
    @classmethod
    def _channel_is_id(cls, value: str) -> str:
        if value[:1] not in {"C", "G"} or not value.isalnum():
            raise ValueError("must be a Slack channel ID such as C0123456789 (not a #name)")
        return value

    @field_validator("public_url")
    @classmethod
    def _https_unless_local(cls, value: AnyHttpUrl) -> AnyHttpUrl:
        if value.scheme == "https" or _loopback(value.host or ""):
            return value
        raise ValueError(
            f"is plain http on {value.host}: approvers' browsers would send their tokens in the clear. Use an "
            "https:// address (a reverse proxy, or a tunnel for a laptop), or http://localhost for local use"
        )

    @field_validator("staff_usergroup")
    @classmethod
    def _usergroup_is_id(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        value = value.strip()
        if not value.startswith("S") or not value.isalnum():
            raise ValueError("must be a Slack user group ID such as S0123456789 (not a @handle)")
        return value

    @field_validator("database_url")
    @classmethod
    def _known_database(cls, value: str) -> str:
        if not value.startswith(("sqlite", "postgresql", "postgres")):
            raise ValueError("must start with sqlite:// or postgresql://")
        return value

    @property
    def approval_link_timedelta(self) -> timedelta:
        """How long an approval link works."""
        return timedelta(days=self.approval_link_days)

    @property
    def sync_busy_interval(self) -> timedelta:
        """Time between syncs of a company in its busy days."""
        return timedelta(minutes=self.sync_busy_interval_minutes)

    @field_validator("digest_time", mode="before")
    @classmethod
    def _time_of_day(cls, value: object) -> object:
        # Only "HH:MM": pydantic alone would also take seconds since midnight ("28800") or "08:00:00+02:00".
        if isinstance(value, time):
            return value
        hours, colon, minutes = str(value).strip().partition(":")
        digits = colon and 1 <= len(hours) <= 2 and len(minutes) == 2 and hours.isdigit() and minutes.isdigit()
        if digits and int(hours) < 24 and int(minutes) < 60:
            return time(int(hours), int(minutes))
        raise ValueError("must be a local time of day as HH:MM (24-hour clock), such as 08:00")

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError("must be an IANA time zone such as Europe/Oslo") from None
        return value

    def url(self, path: str) -> str:
        """An absolute URL under PUBLIC_URL."""
        return str(self.public_url).rstrip("/") + "/" + path.lstrip("/")


def _loopback(host: str) -> bool:
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class SettingsError(Exception):
    """Start-up configuration is missing or malformed; the message is one line naming the setting."""


def load_settings(**overrides: object) -> Settings:
    """Build Settings from the environment, turning pydantic's report into one clear line."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        error = exc.errors()[0]
        name = str(error["loc"][0]).upper() if error["loc"] else "settings"
        if error["type"] == "missing":
            raise SettingsError(f"{name} is not set (see README, Configuration)") from None
        message = str(error["msg"]).removeprefix("Value error, ")
        raise SettingsError(f"{name} is malformed: {message}") from None
