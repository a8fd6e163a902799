"""Typed settings, read once from ``AGENTMARK_*`` variables and passed in.

Nothing reads the environment at import time: ``create_app(settings)`` and the
CLI build a ``Settings`` and hand it down, so tests make their own.
"""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from agentmark_gateway.filemodes import private_dir
from agentmark_gateway.netaccess import normalize_cidrs

PEPPER_FILE = "key-pepper"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="AGENTMARK_", extra="ignore")

    data_dir: Path = Field(
        default=Path("agentmark-data"),
        description="Folder for the SQLite database and the generated key pepper.",
    )
    database_url: str | None = Field(
        default=None,
        description="sqlite:///path/gw.db or postgresql://user@host:5432/db "
        "(default: gateway.db in the data folder).",
    )
    key_pepper: SecretStr | None = Field(
        default=None,
        description="Secret mixed into every key digest (default: generated once, "
        "kept in the data folder with mode 0600).",
    )
    host: str = Field(default="127.0.0.1", description="Address to listen on.")
    port: int = Field(default=9418, ge=1, le=65535, description="Port to listen on.")
    public_url: str | None = Field(
        default=None,
        description="URL users reach the gateway at (for printed links); https makes the "
        "dashboard's cookies Secure.",
    )

    session_ttl_seconds: int = Field(
        default=7 * 24 * 3600, ge=60, description="Lifetime of a sign-in session."
    )
    login_max_failures: int = Field(
        default=5, ge=1, description="Failed sign-ins for one email before throttling."
    )
    login_window_seconds: int = Field(
        default=900, ge=1, description="Window over which failed sign-ins are counted."
    )
    database_timeout_seconds: float = Field(
        default=10.0,
        gt=0,
        description="How long a request waits for the database before it gets 503 with "
        "Retry-After: to connect to PostgreSQL, or on SQLite for another writer's lock.",
    )
    database_statement_timeout_seconds: float = Field(
        default=30.0,
        gt=0,
        description="PostgreSQL: how long one statement may take before it is cancelled "
        "and the request gets 503 with Retry-After (a server that stopped answering "
        "without closing the connection would otherwise hold the request forever).",
    )
    max_body_bytes: int = Field(
        default=10 * 1024 * 1024,
        ge=1024,
        description="Largest request body accepted, measured after decompression.",
    )
    max_dataset_rows: int = Field(
        default=100_000,
        ge=1,
        description="Most rows one dataset may hold: an upload or an append past it gets 413.",
    )

    retention_days: int = Field(
        default=0,
        ge=0,
        le=3650,
        description="Days traces are kept, with their spans and scores, unless an app has "
        "its own setting; older ones are deleted in the background (0: keep everything).",
    )

    read_timeout_seconds: float = Field(
        default=30.0,
        gt=0,
        description="How long a client may take to send a request's headers, and to send "
        "each next part of its body, before it gets 408 and the connection is closed.",
    )

    key_cache_size: int = Field(default=10_000, ge=1, description="Verified keys kept per process.")
    key_cache_ttl_seconds: float = Field(
        default=30.0, gt=0, description="Lifetime of a verified-key cache entry."
    )
    negative_cache_size: int = Field(
        default=10_000, ge=1, description="Unknown key digests remembered per process."
    )
    negative_cache_ttl_seconds: float = Field(
        default=5.0, gt=0, description="Lifetime of an unknown-key cache entry."
    )
    template_cache_bytes: int = Field(
        default=16 * 1024 * 1024,
        ge=0,
        description="Bodies of `GET /v1/templates` answers kept per process (0: none).",
    )
    template_cache_ttl_seconds: float = Field(
        default=300.0, gt=0, description="Lifetime of a cached template answer."
    )
    invalidation_poll_seconds: float = Field(
        default=0.25,
        gt=0,
        description="How often a process looks for key and template changes made by "
        "other processes.",
    )
    last_used_flush_seconds: float = Field(
        default=60.0, gt=0, description="How often last-used times are written."
    )
    usage_counting: bool = Field(
        default=True,
        description="Count each key's requests by outcome and permission (in memory, "
        "written in batches); false turns it off.",
    )
    usage_flush_seconds: float = Field(
        default=15.0, gt=0, description="How often each process writes its usage counts."
    )
    model_prices: dict[str, dict[str, float]] = Field(
        default_factory=dict,
        description='JSON overriding the price table, e.g. {"gpt-4o": {"input": 2.5, '
        '"output": 10}} (USD per million tokens).',
    )
    log_level: str = Field(default="info", description="Log level of the server.")
    log_format: Literal["text", "json"] = Field(
        default="text",
        description="Log lines as text, or as one JSON object a line; each carries the "
        "request's id (see docs/deploy.md, Logs).",
    )
    metrics_token: SecretStr | None = Field(
        default=None,
        min_length=16,
        description="Bearer token that `GET /metrics` (Prometheus format) asks for; "
        "unset: no /metrics (see docs/deploy.md, Metrics).",
    )
    server: Literal["granian", "uvicorn"] = Field(
        default="uvicorn",
        description="HTTP server `agentmark-gateway serve` runs the app under "
        "(`--server` overrides it).",
    )
    access_log: bool = Field(
        default=True, description="One log line per request (false: none; see docs/deploy.md)."
    )

    rate_limit_per_key: int = Field(
        default=0,
        ge=0,
        description="Requests per minute a key may make unless it has its own limit "
        "(0: no default limit).",
    )
    rate_limit_per_app: int = Field(
        default=0,
        ge=0,
        description="Requests per minute all keys of one app may make together (0: none).",
    )
    rate_limit_store: Literal["auto", "memory", "database", "redis"] = Field(
        default="auto",
        description="Where processes share rate-limit counts: memory (one process), "
        "database, or redis; auto picks redis when a Redis URL is set, the database "
        "on PostgreSQL, memory on SQLite.",
    )
    rate_limit_sync_seconds: float = Field(
        default=0.2,
        gt=0,
        description="How often a process exchanges its counts with the shared store.",
    )
    rate_limit_window_seconds: float = Field(
        default=60.0,
        gt=0,
        description="Length of a rate-limit window; limits are counted per window "
        "(keep 60 so they mean requests per minute).",
    )
    redis_url: str | None = Field(
        default=None, description="redis://host:6379/0 to share rate-limit counts in Redis."
    )
    trusted_proxies: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="CIDRs of proxies whose X-Forwarded-For and X-Forwarded-Proto are "
        "believed, comma-separated (default: none; the socket peer is the client).",
    )

    @field_validator("model_prices", mode="before")
    @classmethod
    def _parse_prices(cls, value: Any) -> Any:
        if isinstance(value, str):
            return json.loads(value) if value.strip() else {}
        return value

    @field_validator("trusted_proxies", mode="before")
    @classmethod
    def _parse_proxies(cls, value: Any) -> Any:
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                return json.loads(text)
            return [part.strip() for part in text.split(",") if part.strip()]
        return value

    @field_validator("trusted_proxies")
    @classmethod
    def _check_proxies(cls, value: list[str]) -> list[str]:
        return normalize_cidrs(value)

    @property
    def resolved_rate_limit_store(self) -> str:
        if self.rate_limit_store != "auto":
            return self.rate_limit_store
        if self.redis_url:
            return "redis"
        if self.resolved_database_url.startswith("postgres"):
            return "database"
        return "memory"

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'gateway.db').resolve()}"

    @property
    def base_url(self) -> str:
        if self.public_url:
            return self.public_url.rstrip("/")
        host = "localhost" if self.host in ("127.0.0.1", "0.0.0.0", "::") else self.host  # noqa: S104
        return f"http://{host}:{self.port}"

    def pepper_bytes(self) -> bytes:
        """The key pepper; generated once and kept with mode 0600 when not configured."""
        if self.key_pepper is not None:
            return self.key_pepper.get_secret_value().encode()
        return load_or_create_pepper(self.data_dir)


def load_or_create_pepper(data_dir: Path) -> bytes:
    private_dir(data_dir)
    path = data_dir / PEPPER_FILE
    try:
        # O_EXCL: two processes starting at once agree on the first pepper written.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text().strip().encode()
    with os.fdopen(fd, "w") as handle:
        handle.write(secrets.token_urlsafe(48))
    return path.read_text().strip().encode()
