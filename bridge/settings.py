"""Settings: `SB_*` environment variables over `config/supportbridge.toml`.

The file is found at `$SB_CONFIG`, else `config/supportbridge.toml` under the current directory;
a missing file means built-in defaults. Field names are the variable names without `SB_`.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import string
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import Field, ValidationError, ValidationInfo, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from bridge.domain import Network

DEFAULT_CONFIG_PATH = Path("config") / "supportbridge.toml"


class SettingsError(Exception):
    """A setting has a bad value; the message is one line naming it and why."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SB_", extra="forbid", validate_default=True)

    data_dir: Path = Path("data")
    database_url: str | None = None
    redis_url: str | None = None
    redis_prefix: str = Field(default="sb", pattern=r"^[A-Za-z0-9_.-]{1,32}$")

    http_host: str = "127.0.0.1"
    http_port: int = Field(default=8080, ge=1, le=65535)
    public_url: str | None = None
    metrics_token: str | None = Field(
        default=None,
        min_length=16,
        description="set: /readyz and /metrics answer only 'Authorization: Bearer <token>'; "
        "unset: anyone reaching the port may read them (/healthz is always open)",
    )
    log_level: str = Field(default="INFO", pattern=r"^(DEBUG|INFO|WARNING|ERROR)$")
    log_format: str = Field(default="text", pattern=r"^(text|json)$")
    sign_in_free_attempts: int = Field(
        default=5, ge=1, description="attempts to sign in as one login before the delays start"
    )
    sign_in_free_attempts_per_address: int = Field(
        default=20, ge=1, description="attempts from one client address before the delays start"
    )
    sign_in_first_delay_seconds: float = Field(default=1.0, gt=0)
    sign_in_max_delay_seconds: float = Field(default=900.0, gt=0)
    sign_in_forget_seconds: float = Field(
        default=3600.0, gt=0, description="attempts are forgotten after this long without one"
    )

    telegram_token: str | None = None
    telegram_webhook_secret: str | None = None
    telegram_api_url: str | None = None
    telegram_bot_username: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z][A-Za-z0-9_]{4,31}$",
        description="the bot's @name without @, for the start links that invite to private chats",
    )
    vk_token: str | None = None
    vk_group_id: int | None = None
    vk_callback_secret: str | None = None
    vk_confirmation: str | None = None
    vk_api_url: str | None = None
    facebook_page_token: str | None = None
    facebook_app_secret: str | None = None
    facebook_verify_token: str | None = None
    facebook_api_url: str | None = None
    # Instagram direct messages come through the Messenger Platform: the token is that of the
    # Facebook Page linked to the Instagram professional account.
    instagram_page_token: str | None = None
    instagram_app_secret: str | None = None
    instagram_verify_token: str | None = None
    instagram_api_url: str | None = None
    webchat_secret: str | None = Field(
        default=None,
        min_length=16,
        description="signs web-chat visitors' tokens; unset: generated and kept by the product",
    )
    webchat_origins: list[str] = Field(
        default_factory=list,
        description="the sites whose pages may open the web chat; empty: any site",
    )
    webchat_token_days: int = Field(
        default=180,
        ge=1,
        description="a visitor's token opens the conversation this long after the last visit",
    )
    webchat_trusted_proxies: list[str] = Field(
        default_factory=list,
        description="proxies (addresses or networks) whose X-Forwarded-For names the visitor; "
        "empty: the connection's own address is the visitor's",
    )
    webchat_new_visitors_per_address_per_hour: int = Field(default=120, ge=1)
    webchat_new_visitors_per_hour: int = Field(default=20_000, ge=1)
    webchat_messages_per_address_per_hour: int = Field(default=600, ge=1)
    webchat_messages_per_hour: int = Field(default=60_000, ge=1)
    webchat_file_mb_per_address_per_hour: int = Field(default=120, ge=1)
    webchat_file_mb_per_hour: int = Field(default=2_048, ge=1)
    webchat_file_storage_mb: int = Field(
        default=10_240,
        ge=1,
        description="the most the store keeps of visitors' files, all of them together",
    )
    webchat_file_mb_per_day: int = Field(
        default=5_120,
        ge=1,
        description="the storage quota of visitors' files: what one day may add to the store",
    )

    inbound_shards: int = Field(default=16, ge=1, le=1024)
    batch_size: int = Field(default=256, ge=1, le=10_000)
    shard_lease_ms: int = Field(default=10_000, ge=500)
    claim_idle_ms: int = Field(default=15_000, ge=100)
    stuck_reply_minutes: float = Field(
        default=10.0,
        gt=0,
        description="a reply still queued after this long is shown to the agent as stuck, and "
        "may be sent again",
    )
    outbox_sweep_seconds: float = Field(
        default=10.0,
        gt=0,
        description="how often each sender's process looks for queued messages lost on the way "
        "to the senders (the bus unreachable as they were written) and publishes them again",
    )
    outbox_requeue_after_seconds: float = Field(
        default=60.0,
        ge=0,
        description="a queued message no sender holds is published again this long after it "
        "was written (or last published again); a copy of one still on its way is skipped",
    )
    stalled_shard_seconds: float = Field(
        default=120.0,
        gt=0,
        description="an inbound shard whose oldest entry has waited longer is reported as not "
        "moving (/readyz checks.shards, /metrics sb_inbound_shards_stalled)",
    )
    stop_timeout_seconds: float = Field(
        default=15.0,
        gt=0,
        description="a role asked to stop (SIGTERM) exits within this; past it, it logs what "
        "was still running and exits with 1 (what it took stays queued: nothing is lost)",
    )
    dead_letter_max_bytes: int = Field(default=16_384, ge=256)
    kept_files_days: int = Field(
        default=365,
        ge=1,
        description="how long the files kept for customers' networks (web chat, Messenger) stay",
    )

    responder: str | None = Field(
        default="bridge.knowledge.responder:knowledge_responder",
        description="import path 'module:factory' of the Responder; empty: hand off everything",
    )
    kb_seed: Path | None = Path("config") / "kb" / "sample.yaml"
    kb_refresh_seconds: float = Field(default=5.0, gt=0)
    # the names of kb.embedding.BACKENDS (settings may not import kb: a test keeps them equal)
    kb_embeddings: Literal["none", "bundled", "sentence-transformers"] = Field(
        default="none",
        description="sentence embeddings beside the lexical matcher: none, bundled (the "
        "multilingual model of supportbridge[embeddings]) or sentence-transformers (a model of "
        "that library, kb_embeddings_model); one that cannot load matches lexically",
    )
    kb_embeddings_model: str = Field(
        default="",
        description="for sentence-transformers: the model's name (in the local Hugging Face "
        "cache) or folder",
    )
    kb_embeddings_allow_download: bool = Field(
        default=False,
        description="for sentence-transformers: whether the model may be downloaded at start",
    )
    auto_answer_threshold: float = Field(default=0.9, ge=0.0, le=1.0)
    network_thresholds: dict[Network, Annotated[float, Field(ge=0.0, le=1.0)]] = Field(
        default_factory=dict
    )
    rephrase_margin: float = Field(default=0.2, ge=0.0, le=1.0)
    shadow_mode: bool = False
    shadow_networks: list[Network] = Field(default_factory=list)
    public_auto_answer_networks: list[Network] = Field(
        default_factory=list,
        description="networks where the bot may answer public comments itself (by the same "
        "thresholds); elsewhere every public comment goes to agents",
    )
    thank_community_solutions: bool = Field(
        default=False,
        description="when an agent marks a customer's public answer as the solution, thank its "
        "author publicly under it",
    )

    cost_per_contact: float = Field(default=150.0, ge=0)
    currency: str = Field(default="RUB", max_length=8)
    smtp_host: str | None = None
    smtp_port: int = Field(default=587, ge=1, le=65535)
    smtp_user: str | None = None
    smtp_password: str | None = None
    smtp_starttls: bool = True
    report_from: str | None = None
    report_to: list[str] = Field(default_factory=list)

    sla_minutes: int = Field(default=60, ge=1)
    network_sla_minutes: dict[Network, Annotated[int, Field(ge=1)]] = Field(default_factory=dict)
    usual_wait_minutes: int = Field(default=15, ge=1)
    handoff_ack_en: str = "Thank you! An agent will answer you soon, usually within {minutes} min."
    handoff_ack_ru: str = "Спасибо! Скоро вам ответит оператор, обычно в течение {minutes} мин."
    # handed to a team outside its business hours; {opens}: when it opens, in its time zone
    closed_ack_en: str = "Thank you! We are closed now; an agent will answer you from {opens}."
    closed_ack_ru: str = "Спасибо! Сейчас мы не работаем; оператор ответит вам с {opens}."
    assign_interval_seconds: float = Field(
        default=3.0,
        gt=0,
        description="how often waiting conversations are given to the online members of their "
        "team, and unanswered ones passed on",
    )
    away_after_idle_minutes: float = Field(
        default=10.0,
        gt=0,
        description="an agent whose inbox page is open but unused this long shows as away and "
        "gets no new conversations",
    )
    csat_enabled: bool = Field(
        default=True,
        description="when an agent resolves a conversation, the customer is asked to rate the "
        "help (1-5, the network's own buttons) and may add a comment",
    )

    @field_validator("database_url")
    @classmethod
    def _database_scheme(cls, value: str | None) -> str | None:
        if not value:
            return None
        if not value.startswith(("sqlite+aiosqlite://", "postgresql+asyncpg://")):
            raise ValueError("must start with sqlite+aiosqlite:// or postgresql+asyncpg://")
        return value

    @field_validator("redis_url")
    @classmethod
    def _redis_scheme(cls, value: str | None) -> str | None:
        if not value:
            return None
        if not value.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("must start with redis://, rediss:// or unix://")
        return value

    @field_validator("webchat_origins")
    @classmethod
    def _origins(cls, values: list[str]) -> list[str]:
        """Each an origin as browsers send it: scheme://host[:port], nothing after."""
        origins = []
        for value in values:
            parts = urlsplit(value.strip())
            if parts.scheme not in ("http", "https") or not parts.netloc:
                raise ValueError(f"{value!r} is not an origin like https://shop.example.com")
            if parts.path not in ("", "/") or parts.query or parts.fragment:
                raise ValueError(f"{value!r}: an origin has no path (https://shop.example.com)")
            origins.append(f"{parts.scheme}://{parts.netloc}".lower())
        return origins

    @field_validator("webchat_trusted_proxies")
    @classmethod
    def _proxies(cls, values: list[str]) -> list[str]:
        """Each an address (10.0.0.2) or a network (10.0.0.0/24)."""
        try:
            return [str(ipaddress.ip_network(value.strip(), strict=False)) for value in values]
        except ValueError as exc:
            raise ValueError(f"{exc}: an address or a network like 10.0.0.0/24") from None

    @field_validator("responder")
    @classmethod
    def _moved_responder(cls, value: str | None) -> str | None:
        # The default responder's module moved; a config file written before still names it.
        if value == "bridge.kb_responder:knowledge_responder":
            return "bridge.knowledge.responder:knowledge_responder"
        return value

    @field_validator("kb_embeddings_model")
    @classmethod
    def _model_for_sentence_transformers(cls, value: str, info: ValidationInfo) -> str:
        if info.data.get("kb_embeddings") == "sentence-transformers" and not value.strip():
            raise ValueError("sentence-transformers needs a model: its name or folder")
        return value

    @field_validator("handoff_ack_en", "handoff_ack_ru")
    @classmethod
    def _ack_formats(cls, value: str) -> str:
        try:
            fields = [
                field for _, field, _, _ in string.Formatter().parse(value) if field is not None
            ]
            others = [field for field in fields if field != "minutes"]
            if others:
                raise ValueError(f"found {{{others[0]}}}")
            value.format(minutes=1)  # a conversion or format spec that does not fit a number
        except (KeyError, IndexError, ValueError, TypeError) as exc:
            raise ValueError(f"only the placeholder {{minutes}} is allowed ({exc})") from None
        return value

    @property
    def effective_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'supportbridge.db').as_posix()}"

    @property
    def stuck_after(self) -> dt.timedelta:
        return dt.timedelta(minutes=self.stuck_reply_minutes)

    @property
    def away_after(self) -> dt.timedelta:
        return dt.timedelta(minutes=self.away_after_idle_minutes)

    def sla_for(self) -> dict[Network, int]:
        """Minutes an agent has to answer a waiting customer, per network."""
        return {n: self.network_sla_minutes.get(n, self.sla_minutes) for n in Network}

    def answers_in_public(self, network: Network) -> bool:
        return network in self.public_auto_answer_networks

    def in_shadow(self, network: Network) -> bool:
        return self.shadow_mode or network in self.shadow_networks

    @property
    def distributed(self) -> bool:
        return self.redis_url is not None

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, TomlConfigSettingsSource(settings_cls, config_path()))


def config_path() -> Path:
    return Path(os.environ.get("SB_CONFIG") or DEFAULT_CONFIG_PATH)


def load_settings(**overrides: Any) -> Settings:
    """Read the settings, turning the first bad value into a one-line SettingsError."""
    try:
        return Settings(**overrides)
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise SettingsError(f"config file {config_path()}: not valid TOML ({exc})") from None
    except OSError as exc:
        raise SettingsError(f"config file {config_path()}: {exc.strerror or exc}") from None
    except ValidationError as exc:
        error = exc.errors()[0]
        name = ".".join(str(part) for part in error["loc"]) or "settings"
        if error["type"] == "extra_forbidden":  # from the file: unknown SB_* variables are ignored
            raise SettingsError(f"config file {config_path()}: unknown setting {name!r}") from None
        env = f"SB_{name.upper()}"
        shown = error.get("input")
        got = f" (got {shown!r})" if isinstance(shown, str | int | float) else ""
        raise SettingsError(f"setting {env} ({name}): {error['msg']}{got}") from None
