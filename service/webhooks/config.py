"""Webhook subscriptions: the file named by ``GOTO_WEBHOOKS`` (JSON or YAML).

The file's top-level object has ``subscriptions``, a list of objects with at least ``url`` and ``secret``
(or ``secret_env``); everything else has a default. Every error names the file and the field path
(``subscriptions[1].thresholds.SN``), because the operator who wrote the file is the one who reads it.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from lightcurve.types import check_identifier

__all__ = [
    "ALL_CLASSES",
    "DEFAULT_EVENTS",
    "DEFAULT_REARM_MARGIN",
    "DEFAULT_THRESHOLD",
    "EVENT_CLASS_CHANGED",
    "EVENT_THRESHOLD_CROSSED",
    "EVENT_TYPES",
    "EVENT_UPDATED",
    "Subscription",
    "WebhookConfigError",
    "load_subscriptions",
]

EVENT_UPDATED = "classification.updated"
EVENT_CLASS_CHANGED = "classification.class_changed"
EVENT_THRESHOLD_CROSSED = "classification.threshold_crossed"
EVENT_TYPES = (EVENT_UPDATED, EVENT_CLASS_CHANGED, EVENT_THRESHOLD_CROSSED)
#: Every update is noisy for observers, so it is opt-in.
DEFAULT_EVENTS = (EVENT_CLASS_CHANGED, EVENT_THRESHOLD_CROSSED)
#: Paper Table 3 reports TPR/FPR at a probability threshold of 0.7.
DEFAULT_THRESHOLD = 0.7
#: A class re-arms once its probability falls this far below its threshold (0.7 -> 0.6) unless the
#: subscription names a rearm threshold: the gap is what stops an object hovering near 0.7 from flapping.
DEFAULT_REARM_MARGIN = 0.1
#: Key of a thresholds mapping that applies to every class the mapping does not name.
ALL_CLASSES = "*"


class WebhookConfigError(ValueError):
    """The subscriptions file is missing, unreadable or invalid; the message names file and field."""


def _check_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("must be an absolute http:// or https:// URL")
    return value


def _check_probability(value: float) -> float:
    if not 0.0 < value <= 1.0:
        raise ValueError("must be a probability in (0, 1]")
    return value


def _check_rearm(value: float) -> float:
    if not 0.0 <= value < 1.0:
        raise ValueError("must be a probability in [0, 1)")
    return value


Probability = Annotated[float, AfterValidator(_check_probability)]
RearmProbability = Annotated[float, AfterValidator(_check_rearm)]


class Subscription(BaseModel):
    """One endpoint, the events it wants and how hard to try delivering them.

    ``thresholds`` and ``rearm_thresholds`` are either one number for every class or a mapping
    ``{class: probability}`` where the key ``"*"`` stands for every class not named; classes not covered
    use 0.7 and (their threshold - 0.1). Unknown keys are errors,
    so a typo such as ``treshold`` cannot silently leave the default in place.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: Annotated[str, AfterValidator(check_identifier)] | None = Field(
        default=None, description="stable id used in Redis keys and event ids (default: derived from url)"
    )
    name: str | None = None
    description: str | None = None
    url: Annotated[str, AfterValidator(_check_url)]
    secret: SecretStr | None = Field(default=None, description="HMAC-SHA256 key shared with the receiver")
    secret_env: str | None = Field(default=None, description="name of an environment variable holding it")
    events: tuple[str, ...] = DEFAULT_EVENTS
    thresholds: dict[str, Probability] = Field(default_factory=lambda: {ALL_CLASSES: DEFAULT_THRESHOLD})
    rearm_thresholds: dict[str, RearmProbability] = Field(default_factory=dict)
    timeout_s: float = Field(default=10.0, gt=0, le=300)
    max_attempts: int = Field(default=20, ge=1, le=1000)
    max_age_s: float = Field(default=86400.0, gt=0)
    backoff_base_s: float = Field(default=1.0, gt=0)
    backoff_max_s: float = Field(default=600.0, gt=0)

    @field_validator("events", mode="before")
    @classmethod
    def _events_known(cls, value: Any) -> Any:
        if isinstance(value, str):
            raise ValueError("must be a list of event names")
        if isinstance(value, list | tuple):
            if not value:
                raise ValueError(f"must name at least one of {', '.join(EVENT_TYPES)}")
            unknown = [v for v in value if v not in EVENT_TYPES]
            if unknown:
                raise ValueError(f"unknown event {unknown[0]!r}; known events: {', '.join(EVENT_TYPES)}")
            return tuple(dict.fromkeys(value))  # drop duplicates, keep order
        return value

    @field_validator("thresholds", "rearm_thresholds", mode="before")
    @classmethod
    def _number_means_every_class(cls, value: Any) -> Any:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return {ALL_CLASSES: value}
        if not isinstance(value, dict):
            raise ValueError("must be a probability or a mapping {class: probability}")
        return value

    @model_validator(mode="after")
    def _complete(self, info: ValidationInfo) -> Subscription:
        if (self.secret is None) == (self.secret_env is None):
            raise ValueError("give exactly one of 'secret' and 'secret_env'")
        # listing dead letters reads only ids: it needs no secret (signing, so delivering, does)
        need_secret = (info.context or {}).get("need_secrets", True)
        if self.secret_env is not None:
            env_value = os.environ.get(self.secret_env)
            if not env_value and need_secret:
                raise ValueError(f"secret_env: environment variable {self.secret_env} is not set")
            if env_value:
                object.__setattr__(self, "secret", SecretStr(env_value))
        if not self.secret_value() and need_secret:
            raise ValueError("secret: must not be empty")
        if self.id is None:
            # The id names the Redis streams, so it must survive restarts: derive it from the URL.
            digest = hashlib.sha256(self.url.encode()).hexdigest()[:12]
            object.__setattr__(self, "id", f"sub-{digest}")
        if self.backoff_max_s < self.backoff_base_s:
            raise ValueError("backoff_max_s: must be >= backoff_base_s")
        for cls_name in sorted({*self.thresholds, *self.rearm_thresholds, ALL_CLASSES}):
            threshold, rearm = self.threshold_for(cls_name), self.rearm_threshold_for(cls_name)
            if rearm >= threshold:
                label = "every class not named ('*')" if cls_name == ALL_CLASSES else cls_name
                raise ValueError(
                    f"rearm_thresholds: {label} re-arms at {rearm} which is not below its threshold "
                    f"{threshold} (hysteresis needs rearm < threshold)"
                )
        return self

    @property
    def sid(self) -> str:
        """The subscription id (always set after validation)."""
        assert self.id is not None
        return self.id

    def secret_value(self) -> str:
        return self.secret.get_secret_value() if self.secret is not None else ""

    def wants(self, event_type: str) -> bool:
        return event_type in self.events

    def threshold_for(self, cls_name: str) -> float:
        """Probability at which ``threshold_crossed`` fires for this class."""
        return self.thresholds.get(cls_name, self.thresholds.get(ALL_CLASSES, DEFAULT_THRESHOLD))

    def rearm_threshold_for(self, cls_name: str) -> float:
        """Probability below which a fired class re-arms (always below its threshold)."""
        table = self.rearm_thresholds
        if cls_name in table:
            return table[cls_name]
        if ALL_CLASSES in table:
            return table[ALL_CLASSES]
        return max(0.0, round(self.threshold_for(cls_name) - DEFAULT_REARM_MARGIN, 10))


class _SubscriptionsFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    subscriptions: list[Subscription]


def _field_path(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _parse(path: Path, text: str) -> Any:
    if path.suffix.lower() == ".json":
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            raise WebhookConfigError(f"{path}: invalid JSON at line {exc.lineno}: {exc.msg}") from exc
    import yaml  # deferred: only YAML files need it (JSON is a subset, so it also reads .conf etc.)

    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise WebhookConfigError(f"{path}: invalid YAML: {exc}") from exc


def load_subscriptions(path: str | os.PathLike[str], *, need_secrets: bool = True) -> list[Subscription]:
    """Read and validate a subscriptions file (``.json``; ``.yaml``/``.yml`` or anything else as YAML).

    ``need_secrets=False`` accepts a ``secret_env`` that is not set (the subscription then has no
    secret): for commands that only name subscriptions, such as listing dead letters.

    Raises
    ------
    WebhookConfigError
        Naming the file and the field, e.g. ``hooks.yaml: subscriptions[0].events: unknown event ...``.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise WebhookConfigError(f"{path}: cannot read webhook subscriptions file: {exc.strerror}") from exc
    data = _parse(path, text)
    if not isinstance(data, dict):
        raise WebhookConfigError(f"{path}: top level must be an object with a 'subscriptions' list")
    try:
        parsed = _SubscriptionsFile.model_validate(data, context={"need_secrets": need_secrets})
    except ValidationError as exc:
        err = exc.errors()[0]
        msg = err["msg"].removeprefix("Value error, ")
        where = _field_path(tuple(err["loc"])) or "subscriptions"
        more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
        raise WebhookConfigError(f"{path}: {where}: {msg}{more}") from exc
    seen: dict[str, int] = {}
    for i, sub in enumerate(parsed.subscriptions):
        if sub.sid in seen:
            raise WebhookConfigError(
                f"{path}: subscriptions[{i}].id: {sub.sid!r} is also used by subscriptions[{seen[sub.sid]}] "
                "(give each subscription a distinct 'id')"
            )
        seen[sub.sid] = i
    return parsed.subscriptions
