"""One typed settings object for every eventpipe process, read from ``EVENTPIPE_*`` variables.

Each field maps to the variable ``EVENTPIPE_<FIELD NAME IN UPPER CASE>``. Fields are declared in
sections, one per concern, which the settings tables of docs/configuration.md follow;
:class:`Settings` inherits them all, and a component that needs a single section takes that
section's type. Command-line flags override the environment through
:meth:`Settings.with_overrides`.
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Annotated, Any, Final, Literal, get_args, get_origin, get_type_hints

import msgspec

ENV_PREFIX = "EVENTPIPE_"


def inherited_environment() -> dict[str, str]:
    """This process's environment less every setting in it: what a child process inherits when
    it must see only the settings it is given, none that leaks in from here."""
    return {name: value for name, value in os.environ.items() if not name.startswith(ENV_PREFIX)}


# The settings that take one of a few words. A value is matched ignoring case and surrounding
# blanks, and stored as spelled here.
KafkaCompression = Literal["none", "gzip", "snappy", "lz4", "zstd"]
LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]
LogFormat = Literal["text", "json"]
RedisFailureMode = Literal["open", "closed"]


class SettingsError(ValueError):
    """A setting has a value that cannot be used; the message names the variable."""


@dataclass(frozen=True)
class KafkaSettings:
    """Topics, consumer groups and the gateway's producer."""

    kafka_bootstrap_servers: str = "127.0.0.1:9092"
    events_topic: str = "eventpipe.events"
    exports_topic: str = "eventpipe.exports"
    dead_letter_topic: str = "eventpipe.events.dlq"
    topic_partitions: int = 8
    topic_replication_factor: int = 1
    # The idempotent producer needs InitProducerId support from the broker; keep it switchable.
    kafka_idempotence: bool = False
    # Codec of the messages the gateway produces: none, gzip, snappy, lz4 or zstd. Events are
    # repetitive JSON; lz4 costs the gateway little and spares the broker and the processor
    # most of the bytes.
    kafka_compression: KafkaCompression = "lz4"
    # How long the gateway waits for the broker to acknowledge a request before answering 503.
    produce_timeout_seconds: float = 5.0
    # Bytes of not-yet-acknowledged messages the gateway holds before it answers 503.
    producer_buffer_bytes: int = 64 * 1024 * 1024
    processor_group_id: str = "eventpipe-processor"
    exporter_group_id: str = "eventpipe-exporter"


@dataclass(frozen=True)
class ClickHouseSettings:
    """Where the events table is: the processor writes it, the exporter and CVAT read it."""

    # ``chdb:///abs/path`` for the embedded engine, ``http(s)://user:pass@host:8123/db`` for a
    # server. Empty means the embedded engine under ``data_dir/clickhouse``.
    clickhouse_dsn: str = field(default="", repr=False)
    # The database of the ``events`` table: CVAT's export and dashboards read ``cvat.events``.
    # It must not be the DSN's own database, which keeps the migrations' bookkeeping.
    clickhouse_database: str = "cvat"


@dataclass(frozen=True)
class ProcessorSettings:
    """How a processor batches its inserts, and how it shares cores with a gateway."""

    batch_max_rows: int = 50_000
    batch_max_seconds: float = 0.5
    # Niceness a worker adds to its own at start (0-19; 0 keeps its priority). On cores shared
    # with a gateway, clients waiting for their 201 then go first and the worker drains what
    # Kafka holds for it with the time left; on cores of its own it loses nothing.
    worker_nice: int = 5


@dataclass(frozen=True)
class HttpSettings:
    """The public listener of ``eventpipe gateway``, and the size and time limits that keep
    large or slow requests from holding it."""

    http_host: str = "127.0.0.1"
    http_port: int = 8080
    max_body_bytes: int = 8 * 1024 * 1024
    # Seconds a request body may take to arrive in full (408 after): slow uploads hold connections.
    body_read_timeout_seconds: float = 30.0
    # Seconds a request line and its headers may take (408 after): slow heads hold connections too.
    header_read_timeout_seconds: float = 10.0
    # Proxies in front of the gateway that append to X-Forwarded-For, counted as CVAT counts
    # CVAT_NUM_PROXIES: the caller's address stored with its events is the one this many entries
    # from the header's right end (0: the connection's peer). See docs/client-events.md.
    num_proxies: Annotated[int, msgspec.Meta(ge=0)] = 0


@dataclass(frozen=True)
class AuthSettings:
    """How long verified credentials are trusted, the login throttle, and JWTs
    (docs/security.md)."""

    # Seconds a verified Basic-auth password stays cached, so the slow hash runs once per client.
    auth_cache_seconds: float = 60.0
    # Seconds an API token stays cached: a revoked token keeps working in a gateway at most this
    # long. Token checks are one indexed SQLite read, so a short time costs little.
    token_cache_seconds: float = 5.0
    # Failed logins (per client address and username) allowed before the pair is locked out, and
    # the first lockout; each further failure doubles it (up to 15 minutes). 0 failures: no limit.
    login_failure_limit: int = 5
    login_backoff_seconds: float = 1.0
    # JWT bearer tokens from an identity provider: HS256 with this secret and/or RS256/ES256 with
    # the keys of this JWKS file. Neither set: JWTs are not accepted.
    jwt_hs256_secret: str = field(default="", repr=False)
    jwt_jwks_file: str = ""
    # When set, a token's iss / aud must match; a token with an aud needs jwt_audience set.
    jwt_issuer: str = ""
    jwt_audience: str = ""
    jwt_leeway_seconds: float = 30.0


@dataclass(frozen=True)
class LimitSettings:
    """What one request and one tenant may send (docs/security.md)."""

    max_events_per_request: int = 10_000
    # Size (in bytes, as stored) and nesting depth of one event's payload.
    max_payload_bytes: int = 64 * 1024
    max_payload_depth: int = 32
    # Events per second per tenant (organization, or a user's sandbox) and the burst above that
    # rate; 0 events/s: no limit. Each gateway process enforces 1/gateway_processes of both.
    tenant_events_per_second: float = 20_000.0
    tenant_burst_events: int = 200_000
    # How many gateway processes share the limits: uvicorn workers times replicas.
    gateway_processes: int = 1


@dataclass(frozen=True)
class ExportSettings:
    """The object store that holds exported CSV files, and what goes into them."""

    # Empty: files under data_dir instead of S3.
    s3_endpoint: str = ""
    s3_bucket: str = "eventpipe-exports"
    s3_access_key: str = ""
    s3_secret_key: str = field(default="", repr=False)
    s3_region: str = "us-east-1"
    s3_secure: bool = False
    export_ttl_seconds: int = 3600
    # Off, as CVAT's export writes cells as they are; on, a cell that a spreadsheet would run as a
    # formula gets a leading apostrophe.
    csv_neutralize_formulas: bool = False


@dataclass(frozen=True)
class ObservabilitySettings:
    """Logs and Prometheus endpoints (docs/operations.md, "Observability")."""

    log_level: LogLevel = "INFO"
    # "text" for people at a terminal, "json" (one object per line) for log collectors.
    log_format: LogFormat = "text"
    # Port of the process's Prometheus endpoint (GET /metrics on http_host), a worker's or a
    # gateway's (all its processes together); 0 serves none. Never the API's port.
    metrics_port: int = 9108


@dataclass(frozen=True)
class SharedStateSettings:
    """What gateway replicas share: identities in PostgreSQL, limits in Redis
    (docs/operations.md, "Production topology")."""

    # Users, orgs, memberships and token hashes: empty keeps them in SQLite under data_dir (one
    # machine); postgresql://user:pass@host:5432/db shares them between gateway replicas.
    identity_dsn: str = field(default="", repr=False)
    # PostgreSQL connections per gateway process, and how long a lookup waits for one (then 503).
    identity_pool_size: int = 4
    identity_timeout_seconds: float = 5.0
    # redis://host:6379/0: tenant limits and the login throttle shared by every gateway process,
    # so a tenant gets its limit once however many run. Empty: each process enforces its share.
    rate_limit_redis_url: str = field(default="", repr=False)
    # What a request gets while Redis cannot be reached: "open" admits it unlimited, "closed"
    # answers 503 with Retry-After.
    rate_limit_redis_failure: RedisFailureMode = "open"
    # How long one Redis round trip may take before it counts as an outage.
    rate_limit_redis_timeout_seconds: float = 0.5
    # Start of every key the limits keep in Redis: deployments sharing one Redis need their own.
    rate_limit_redis_prefix: str = "eventpipe:"


@dataclass(frozen=True)
class CvatSettings:
    """CVAT as the identity provider: callers' CVAT credentials are checked by CVAT itself
    (docs/operations.md, "Production topology")."""

    # https://cvat.example.com; empty: the local store.
    cvat_url: str = ""
    # How long CVAT's answer for one credential is reused: a revoked CVAT token or a removed
    # membership works at most this long more.
    cvat_cache_seconds: float = 10.0
    # Credentials (and org contexts) remembered at once per gateway process.
    cvat_cache_entries: int = 10_000
    # Longest wait for each lookup with CVAT (the user; the org context), all its calls together;
    # then 503 with Retry-After.
    cvat_timeout_seconds: float = 3.0
    # CVAT's CSRF_TRUSTED_ORIGINS, comma-separated: other origins whose web pages may post with a
    # CVAT session (Django's origin check), e.g. https://cvat.example.com,https://*.example.com.
    cvat_csrf_trusted_origins: str = ""


@dataclass(frozen=True)
class IntakeSettings:
    """A listener of its own for the events CVAT's server ships with python-logstash-async over
    HTTP (docs/cvat.md, "The intake for CVAT's server")."""

    # 0 serves none. Never the public port: without credentials anyone reaching it can write events.
    intake_port: int = 0
    intake_host: str = "127.0.0.1"
    # HTTP Basic credentials the handler must send; both set, or neither (no authentication).
    intake_username: str = ""
    intake_password: str = field(default="", repr=False)
    # python-logstash-async's HttpTransport sends up to 100 MB a request (its max_content_length)
    # and resends a refused one for ever: the intake takes all it can send.
    intake_max_body_bytes: int = 100 * 1024 * 1024
    intake_max_events_per_batch: int = 10_000
    # Batches wait here, on disk, while the broker is away (answered 200 once written); empty:
    # data_dir/intake-spool. Give each intake a persistent directory of its own.
    intake_spool_dir: str = ""
    # The spool's bound; at it the intake answers 503. 10 minutes of CVAT's workers' events at
    # 1,000 events/s take about 320 MB (docs/operations.md).
    intake_spool_max_bytes: int = 2 * 1024 * 1024 * 1024
    # How long a batch waits for the broker's acknowledgement before it is spooled instead: well
    # under the 5 s CVAT's handler waits for an answer.
    intake_spool_after_seconds: float = 1.0


# The sections in the order docs/configuration.md lists them; the last base's fields come first.
@dataclass(frozen=True)
class Settings(
    IntakeSettings,
    CvatSettings,
    SharedStateSettings,
    ObservabilitySettings,
    ExportSettings,
    LimitSettings,
    AuthSettings,
    HttpSettings,
    ProcessorSettings,
    ClickHouseSettings,
    KafkaSettings,
):
    """Every section's settings, flat: ``settings.http_port`` is ``EVENTPIPE_HTTP_PORT``."""

    # Where the embedded stack keeps users, tokens, the embedded ClickHouse and exported files.
    data_dir: Path = Path("./data")

    def __post_init__(self) -> None:
        # Also where settings are built in code or overridden by a flag, not only from the
        # environment: a wrong word fails here, naming the variable, not later in a component.
        for name, choices in _CHOICE_FIELDS.items():
            object.__setattr__(self, name, _choice(name, getattr(self, name), choices))

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Build settings from ``EVENTPIPE_*`` variables, then apply non-None ``overrides``."""
        env = os.environ if environ is None else environ
        raw = {
            f.name: _bool_word(env[name]) if f.name in _BOOL_FIELDS else env[name]
            for f in fields(cls)
            if (name := ENV_PREFIX + f.name.upper()) in env
        }
        for name, choices in _CHOICE_FIELDS.items():
            if name in raw:
                raw[name] = _choice(name, raw[name], choices)
        try:
            # Lax mode: msgspec reads numbers and booleans from their text.
            settings = msgspec.convert(raw, cls, strict=False, dec_hook=_decode_path)
        except msgspec.ValidationError as exc:
            raise _named_error(exc, env) from None
        return settings.with_overrides(**overrides)

    def with_overrides(self, **overrides: Any) -> Settings:
        return dataclasses.replace(self, **{k: v for k, v in overrides.items() if v is not None})

    def child_environment(self) -> dict[str, str]:
        """The environment of a child process that is to run with exactly these settings."""
        return inherited_environment() | self.to_env()

    def to_env(self) -> dict[str, str]:
        """The variables that reproduce these settings in a child process."""
        env: dict[str, str] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            env[ENV_PREFIX + f.name.upper()] = (
                str(value).lower() if isinstance(value, bool) else str(value)
            )
        return env

    def redacted(self) -> dict[str, str]:
        """Settings safe to log: secret values replaced by ``***``."""
        return {
            k: ("***" if k.removeprefix(ENV_PREFIX).lower() in SECRET_FIELDS and v else v)
            for k, v in self.to_env().items()
        }

    @property
    def resolved_clickhouse_dsn(self) -> str:
        if self.clickhouse_dsn:
            return self.clickhouse_dsn
        return f"chdb://{(self.data_dir / 'clickhouse').resolve()}"

    @property
    def resolved_intake_spool_dir(self) -> Path:
        return (
            Path(self.intake_spool_dir) if self.intake_spool_dir else self.data_dir / "intake-spool"
        )

    @property
    def max_message_bytes(self) -> int:
        """The largest Kafka message the gateway produces. A message holds the request's events
        plus the identity stamped on each of them, so it can be larger than the body; the events
        topic is created to accept it (a real cluster's default limit is about 1 MB)."""
        return self.max_body_bytes * 2 + 1024 * 1024

    @property
    def kafka_compression_type(self) -> str | None:
        """``kafka_compression`` as aiokafka takes it: None for no compression."""
        return None if self.kafka_compression == "none" else self.kafka_compression

    @property
    def embedded_clickhouse(self) -> bool:
        return self.resolved_clickhouse_dsn.startswith("chdb://")


# Settings that hold secrets are declared ``repr=False`` and never printed (:meth:`redacted`).
SECRET_FIELDS: Final = frozenset(f.name for f in fields(Settings) if not f.repr)


def setting_names() -> set[str]:
    """Every environment variable the settings object reads."""
    return {ENV_PREFIX + f.name.upper() for f in fields(Settings)}


# Words for a boolean beyond msgspec's own true/false/1/0.
_BOOL_WORDS: Final = {"yes": "true", "on": "true", "no": "false", "off": "false"}


def _bool_fields() -> frozenset[str]:
    info = msgspec.inspect.type_info(Settings)
    assert isinstance(info, msgspec.inspect.DataclassType)
    return frozenset(f.name for f in info.fields if isinstance(f.type, msgspec.inspect.BoolType))


_BOOL_FIELDS: Final = _bool_fields()


def _choice_fields() -> dict[str, tuple[str, ...]]:
    hints = get_type_hints(Settings)
    literal = [f.name for f in fields(Settings) if get_origin(hints[f.name]) is Literal]
    return {name: get_args(hints[name]) for name in literal}


# Each ``Literal`` setting's words, in the order its type lists them.
_CHOICE_FIELDS: Final = _choice_fields()
# msgspec's errors end with the field's path: "Expected `int`, got `str` - at `$.http_port`".
_ERROR_FIELD: Final = re.compile(r"^(?P<reason>.*) - at `\$\.(?P<field>\w+)`$")


def _bool_word(raw: str) -> str:
    lowered = raw.strip().lower()
    return _BOOL_WORDS.get(lowered, lowered)


def _choice(name: str, value: object, choices: tuple[str, ...]) -> str:
    """``value`` spelled as one of ``choices``, whatever its case; else an error naming the
    variable and every choice."""
    if isinstance(value, str):
        wanted = value.strip().lower()
        for choice in choices:
            if choice.lower() == wanted:
                return choice
    raise SettingsError(f"{ENV_PREFIX}{name.upper()}={value!r} is not one of {', '.join(choices)}")


def _decode_path(kind: type, value: object) -> object:
    if kind is Path and isinstance(value, str):
        return Path(value)
    raise TypeError(f"cannot read a {kind.__name__} from {value!r}")


def _named_error(exc: msgspec.ValidationError, env: Mapping[str, str]) -> SettingsError:
    """The error of the variable at fault: its name, its value, and what was expected."""
    match = _ERROR_FIELD.match(str(exc))
    if match is None:
        return SettingsError(f"invalid {ENV_PREFIX}* setting: {exc}")
    name = ENV_PREFIX + match["field"].upper()
    return SettingsError(f"{name}={env.get(name)!r} is not valid: {match['reason']}")
