"""All configuration, read once from the environment (prefix `GPUCLOUD_`) at the entry point.

This is the only module that reads the environment. Nested groups use `__` in variable names
(`GPUCLOUD_QUEUE__MAX_DEPTH=500`). Everything else receives a `Settings` (or one of its groups)
through its constructor.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from pathlib import Path

from pydantic import BaseModel, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class QueueSettings(BaseModel):
    """Delivery and backpressure (docs/architecture.md §4)."""

    max_depth: int = Field(1000, ge=1, description="jobs waiting per model before 429")
    max_wait_s: float = Field(60.0, gt=0, description="longest a job may wait to start before 503")
    lease_timeout_s: float = Field(6.0, gt=0, description="a lease not renewed this long is reclaimed")
    max_attempts: int = Field(3, ge=1, description="deliveries before a job is dead-lettered")
    fair_every: int = Field(8, ge=2, description="every n-th lease comes from the lowest waiting class")
    async_max_wait_s: float = Field(3600.0, gt=0, description="longest an async job (POST /v1/jobs) may wait")
    result_ttl_s: float = Field(3600.0, gt=0, description="how long finished async results are kept")
    stranded_after_s: float = Field(
        30.0, gt=0, description="a row still queued this long is submitted again (idempotently)"
    )
    reconcile_every_s: float = Field(5.0, gt=0, description="how often the reconciler passes")
    request_timeout_s: float = Field(600.0, gt=0, description="longest a synchronous request may take")


class LocalWorkerSettings(BaseModel):
    """The worker `gpucloud serve` runs in-process (embedded mode)."""

    enabled: bool | None = Field(None, description="default: on without Redis, off with it")
    models: list[str] = Field(default_factory=lambda: ["gpucloud-sim-1"])
    slots: int = Field(64, ge=1)
    ttft_ms: float = Field(0.0, ge=0)
    tokens_per_s: float = Field(0.0, ge=0, description="0: as fast as possible")
    natural_end: bool = Field(True, description="false: answers always run to max_tokens")
    simulate_gpus: str | None = Field(
        None, description="fake GPU inventory for demos, e.g. 'H100:80'; unset: NVML when present"
    )
    # What deployments may run here besides presets (gpucloud.worker.consent): shell patterns.
    allow_commands: list[str] = Field(default_factory=list, description="custom engine commands allowed")
    allow_urls: list[str] = Field(default_factory=list, description="engine server URLs it may attach to")


class KeyDefaults(BaseModel):
    """Limits a new key gets when its creator sets none (None: unlimited)."""

    rpm: int | None = Field(None, ge=0)
    tpm: int | None = Field(None, ge=0)
    max_concurrency: int | None = Field(None, ge=0)
    token_quota: int | None = Field(None, ge=0)
    budget_usd: float | None = Field(None, ge=0)
    budget_period: str | None = Field(None, pattern="^(daily|monthly)$")


class ModelPrice(BaseModel):
    input_per_million: float = Field(0.0, ge=0, description="USD per million prompt tokens")
    output_per_million: float = Field(0.0, ge=0, description="USD per million completion tokens")
    batch_factor: float = Field(0.5, ge=0, description="price multiplier for Batch API requests")


class RequestLimits(BaseModel):
    """Bounds on a single request (docs/architecture.md §6); beyond them 400 or 413, fast."""

    max_body_bytes: int = Field(4 * 1024 * 1024, ge=1024)
    max_n: int = Field(16, ge=1)
    max_tokens: int = Field(32768, ge=1)
    max_stop: int = Field(4, ge=1)
    max_messages: int = Field(2048, ge=1)
    max_prompt_chars: int = Field(2_000_000, ge=1)
    max_embedding_inputs: int = Field(2048, ge=1, description="texts in one /v1/embeddings request")


class ClusterSettings(BaseModel):
    """Worker heartbeats and health (gpucloud.cluster.health): when silence makes a worker
    unhealthy, then offline, and how many beats in a row bring it back."""

    heartbeat_interval_s: float = Field(5.0, gt=0, description="how often workers send a heartbeat")
    unhealthy_after_s: float | None = Field(
        None, gt=0, description="silence before healthy → unhealthy; default 3 × heartbeat_interval_s"
    )
    offline_after_s: float = Field(60.0, gt=0, description="silence before a worker is offline")
    recover_beats: int = Field(2, ge=1, description="beats in a row that make a worker healthy again")
    monitor_every_s: float = Field(2.0, gt=0, description="how often the monitor applies the rules")

    def unhealthy_after(self) -> float:
        return self.unhealthy_after_s if self.unhealthy_after_s is not None else 3 * self.heartbeat_interval_s


class AuthThrottleSettings(BaseModel):
    """Failed authentication per client address (gpucloud.limits.auth_throttle)."""

    max_failures: int = Field(20, ge=1, description="wrong credentials per window before 429")
    window_s: float = Field(60.0, gt=0, description="the window, in seconds")


class StorageSettings(BaseModel):
    """Object storage (gpucloud.storage): unset `url` keeps objects under data_dir/objects."""

    url: str | None = Field(None, description="s3://bucket/prefix, or file:///path; unset: data_dir")
    endpoint_url: str | None = Field(None, description="S3-compatible endpoint (MinIO); unset: AWS")
    region: str | None = None
    access_key_id: SecretStr | None = None
    secret_access_key: SecretStr | None = None
    part_size_bytes: int = Field(8 * 1024 * 1024, ge=5 * 1024 * 1024, description="multipart part size")


class FilesSettings(BaseModel):
    """The Files API (`/v1/files`)."""

    max_bytes: int = Field(200 * 1024 * 1024, ge=1, description="largest file one upload may hold")
    max_batch_lines: int = Field(50_000, ge=1, description="most requests in one batch input file")


class BatchSettings(BaseModel):
    """The Batch API (`/v1/batches`) and its feeder."""

    in_flight: int = Field(64, ge=1, description="a batch's lines on the queue at once")
    max_share: float = Field(
        0.75,
        gt=0,
        le=1,
        description="share of a model's worker slots batches may fill (the rest: interactive)",
    )
    every_s: float = Field(1.0, gt=0, description="how often the feeder tops batches up")
    window_s: float = Field(
        86400.0, gt=0, description="what completion_window '24h' lasts (tests shorten it)"
    )


class WebhookSettings(BaseModel):
    """Outbound webhooks (`/api/webhooks`)."""

    allow_private: bool = Field(False, description="true: loopback/private targets allowed (SSRF guard off)")
    allow_networks: list[str] = Field(
        default_factory=list, description="CIDRs allowed although not public, e.g. an internal receiver's"
    )
    max_attempts: int = Field(20, ge=1, description="tries before a delivery is given up (about a day)")
    backoff_s: float = Field(5.0, gt=0, description="first retry delay; doubles each try, capped at 2 h")
    timeout_s: float = Field(10.0, gt=0)
    every_s: float = Field(1.0, gt=0, description="how often the sender looks for due deliveries")

    @field_validator("allow_networks")
    @classmethod
    def _cidrs(cls, value: list[str]) -> list[str]:
        for cidr in value:
            ipaddress.ip_network(cidr, strict=False)  # a ValueError names the bad one at startup
        return value

    def networks(self) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
        return [ipaddress.ip_network(cidr, strict=False) for cidr in self.allow_networks]


class AccountSettings(BaseModel):
    """Users' sign-in (gpucloud.accounts): access tokens and the throttling of wrong passwords."""

    jwt_secret: SecretStr | None = Field(
        None, min_length=32, description="HS256 key of access tokens; unset: generated on first start"
    )
    access_token_ttl_s: int = Field(900, ge=1, le=86400, description="lifetime of one access token")
    session_max_s: int = Field(
        43200, ge=1, description="refreshing stops this long after the password sign-in"
    )
    login_max_failures: int = Field(5, ge=1, description="wrong passwords per account per window")
    login_ip_max_failures: int = Field(50, ge=1, description="wrong passwords per client IP per window")
    login_window_s: float = Field(900.0, gt=0, description="the window failures are counted over")
    invitation_ttl_s: int = Field(
        7 * 86400, ge=60, description="how long an invitation to an organisation may be accepted"
    )
    audit_retention_days: int = Field(
        365, ge=0, description="audit rows older than this are deleted; 0: kept forever"
    )
    audit_retention_every_s: float = Field(
        3600.0, gt=0, description="how often rows past retention are looked for"
    )


class OidcSettings(BaseModel):
    """Single sign-on with an OpenID Connect provider (gpucloud.accounts.oidc): on when `issuer`
    and `client_id` are set."""

    issuer: str | None = Field(None, description="the provider's issuer URL (discovery is read from it)")
    client_id: str | None = None
    client_secret: SecretStr | None = None
    display_name: str | None = Field(None, description="the dashboard's button: 'Sign in with …'")
    allowed_domains: list[str] = Field(
        default_factory=list, description="email domains that may sign in; empty: any"
    )
    default_role: str | None = Field(
        "member", pattern="^(admin|member|viewer)$", description="role in default_org of a new user"
    )
    default_org: str = Field("org_default", description="the organisation new users join")
    redirect_uri: str | None = Field(
        None, description="the callback URL registered with the provider; unset: from the request"
    )
    scopes: list[str] = Field(default_factory=lambda: ["openid", "email", "profile"])
    timeout_s: float = Field(10.0, gt=0, description="calls to the provider")

    @field_validator("allowed_domains")
    @classmethod
    def _lower(cls, value: list[str]) -> list[str]:
        return [domain.strip().lower().lstrip("@") for domain in value if domain.strip()]

    def enabled(self) -> bool:
        return bool(self.issuer and self.client_id)


_PREFIX = "GPUCLOUD_"


class Settings(BaseSettings):
    """The whole configuration. See the README's configuration table."""

    model_config = SettingsConfigDict(
        env_prefix=_PREFIX, env_nested_delimiter="__", extra="ignore", validate_default=True
    )

    data_dir: Path = Field(default_factory=lambda: Path.home() / ".gpucloud")
    database_url: str | None = Field(None, description="default: SQLite file in data_dir")
    redis_url: SecretStr | None = Field(None, description="set: Redis queue and limits (cluster mode)")
    redis_cluster: bool = Field(
        False, description="the URL names a Redis Cluster node (same as a redis+cluster:// URL)"
    )
    redis_prefix: str = Field(
        "gc", pattern=r"^[A-Za-z0-9_.\-]{1,64}$", description="namespace of every Redis key"
    )
    admin_key: SecretStr | None = Field(None, description="unset: generated on first start")
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=0, le=65535)
    log_level: str = "INFO"
    log_format: str = Field("console", pattern="^(console|json)$")
    instance_id: str | None = Field(None, description="this process's name in queues; default random")
    otlp_endpoint: str | None = Field(None, description="OTLP/HTTP endpoint for traces; unset: no tracing")
    sqlite_busy_timeout_ms: int = Field(30000, ge=0)
    models_dir: Path | None = Field(
        None, description="where deployment sources (local model directories) live; default data_dir/models"
    )
    api_docs: bool = Field(True, description="serve /docs (Swagger UI) and /openapi.json, both public")

    queue: QueueSettings = Field(default_factory=QueueSettings)
    local_worker: LocalWorkerSettings = Field(default_factory=LocalWorkerSettings)
    limits: RequestLimits = Field(default_factory=RequestLimits)
    key_defaults: KeyDefaults = Field(default_factory=KeyDefaults)
    cluster: ClusterSettings = Field(default_factory=ClusterSettings)
    auth_throttle: AuthThrottleSettings = Field(default_factory=AuthThrottleSettings)

    storage: StorageSettings = Field(default_factory=StorageSettings)
    files: FilesSettings = Field(default_factory=FilesSettings)
    batches: BatchSettings = Field(default_factory=BatchSettings)
    webhooks: WebhookSettings = Field(default_factory=WebhookSettings)
    accounts: AccountSettings = Field(default_factory=AccountSettings)
    oidc: OidcSettings = Field(default_factory=OidcSettings)
    worker_token: SecretStr | None = Field(None, description="`gpucloud worker --server`'s token")
    # Price table: model → price; `default_price` for models not listed. JSON in the environment:
    # GPUCLOUD_PRICES='{"llama-3-8b": {"input_per_million": 0.2, "output_per_million": 0.6}}'
    prices: dict[str, ModelPrice] = Field(default_factory=dict)
    default_price: ModelPrice = Field(default_factory=ModelPrice)
    # Tokens reserved for the completion when a request sets no max_tokens.
    default_reserve_tokens: int = Field(1024, ge=1)
    # How long a gateway trusts a cached API key without reading its row again. Changes are
    # announced at once (gpucloud.keycache); this bounds one whose announcement was lost.
    key_cache_ttl_s: float = Field(5.0, ge=0.0, le=60.0)

    @field_validator("admin_key")
    @classmethod
    def _usable_admin_key(cls, value: SecretStr | None) -> SecretStr | None:
        # A mistake here used to start a server that answered 401 to everything: refuse it at once.
        if value is not None:
            from gpucloud.keys import check_operator_key  # the key format lives with the keys

            check_operator_key(value.get_secret_value())
        return value

    @field_validator("log_level")
    @classmethod
    def _upper(cls, value: str) -> str:
        return value.upper()

    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'gpucloud.db').resolve()}"

    def resolved_models_dir(self) -> Path:
        return (self.models_dir or self.data_dir / "models").resolve()

    def redis_dsn(self) -> str | None:
        """The Redis URL; with `redis_cluster` in the `redis+cluster://` form, which is how every
        client factory (`gpucloud.redis_pools.redis_client`) tells a cluster from one server."""
        if not self.redis_url:
            return None
        url = self.redis_url.get_secret_value()
        if self.redis_cluster:
            from gpucloud.redis_pools import as_cluster_url  # redis is imported only in cluster mode

            return as_cluster_url(url)
        return url

    def local_worker_enabled(self) -> bool:
        if self.local_worker.enabled is not None:
            return self.local_worker.enabled
        return self.redis_url is None


def child_environment(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment for a third-party child process (an engine server): this process's, without
    the `GPUCLOUD_*` variables (they hold the worker's token and the Redis and database URLs),
    plus `extra`. Here because this is the only module that reads the environment."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(_PREFIX)}
    env.update(extra or {})
    return env


def export_overrides(overrides: Mapping[str, object]) -> None:
    """Put command-line overrides into this process's environment (as `GPUCLOUD_*` variables), so
    that child processes that build their own `Settings` (`serve --workers N`) see the same ones."""
    for name, value in overrides.items():
        if value is not None:
            os.environ[f"{_PREFIX}{name.upper()}"] = (
                str(value).lower() if isinstance(value, bool) else str(value)
            )
