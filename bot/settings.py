"""Process settings from the environment (and an optional .env), names fixed by the deployment contract.

Connection strings are parsed and validated here, once, when a command starts (`load_settings`): a
malformed one stops start-up with an error that names the variable and says what is wrong, never
quoting the value, since the part a parser trips over is usually inside the password."""
from __future__ import annotations

import re
from urllib.parse import urlsplit

import psycopg.conninfo
import redis.connection
from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class SettingsError(Exception):
    """Malformed settings; the message names each variable and the problem, never a value."""


ENCODING_HINT = "percent-encode special characters in the user and password (% as %25, space %20, # %23, / %2F, @ %40)"
_BAD_PERCENT = re.compile(r"%(?![0-9A-Fa-f]{2})")
_SPACE = re.compile(r"[\s\x00-\x1f\x7f]")
_ACCOUNT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_HOST = re.compile(r"^[A-Za-z0-9.-]+$")


def url_problem(url: str, schemes: tuple[str, ...]) -> str | None:
    """What is wrong with a connection URL, in words that quote none of it; None when it is fine."""
    if _SPACE.search(url):
        return "it contains a space or control character"
    if _BAD_PERCENT.search(url):
        return "it contains a % that does not start a percent-encoded byte"
    if url.count("[") != url.count("]"):
        return "its [IPv6] host brackets do not match"
    scheme = url.split("://", 1)[0].lower() if "://" in url else ""
    if scheme not in schemes:
        return "it must start with " + " or ".join(f"{s}://" for s in schemes)
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises when an unencoded / ? # or @ in the password moved the split
    except ValueError:
        return "its host or port does not parse"
    if parts.fragment:
        return "it contains a #"
    if not parts.hostname and scheme != "unix":
        return "it names no host"
    return None


def postgres_problem(url: str) -> str | None:
    problem = url_problem(url, ("postgresql", "postgres"))
    if problem:
        return problem
    try:  # libpq's own parser, as psycopg.connect will use it
        params = psycopg.conninfo.conninfo_to_dict(url)
    except psycopg.Error:
        return "libpq cannot parse it"
    if not str(params.get("port", "5432")).replace(",", "").isdigit():
        return "libpq reads its port as something other than a number"
    return None


def redis_problem(url: str) -> str | None:
    problem = url_problem(url, ("redis", "rediss", "unix"))
    if problem:
        return problem
    try:  # redis-py's own parser, as Redis.from_url will use it
        redis.connection.parse_url(url)
    except ValueError:
        return "redis-py cannot parse it"
    return None


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore", populate_by_name=True)

    slack_bot_token: SecretStr | None = None
    slack_signing_secret: SecretStr | None = None
    slack_app_token: SecretStr | None = None  # Socket Mode when set
    slack_api_url: str = "https://slack.com/api/"

    redis_url: SecretStr = SecretStr("redis://localhost:6379/0")
    # Redis Sentinel: "host:port,host:port" of the sentinels and the monitored name. REDIS_URL still
    # gives the database, password and TLS; its host is then unused.
    redis_sentinels: str | None = None
    redis_sentinel_master: str = "mymaster"
    redis_sentinel_password: SecretStr | None = None
    # Replicas that must confirm (WAIT) each transition someone acts on; default 1 with Sentinel, else 0.
    redis_min_replicas: int | None = Field(None, validation_alias="SYNCBOT_REDIS_MIN_REPLICAS", ge=0)
    redis_wait_ms: int = Field(1000, validation_alias="SYNCBOT_REDIS_WAIT_MS", gt=0)
    aurora_database_url: SecretStr | None = None

    snowflake_account: str | None = None
    snowflake_user: str | None = None
    snowflake_password: SecretStr | None = None
    snowflake_private_key_file: str | None = None
    snowflake_private_key_file_pwd: SecretStr | None = None  # the key file's passphrase, if encrypted
    snowflake_role: str | None = None
    snowflake_warehouse: str | None = None
    snowflake_database: str | None = None
    snowflake_schema: str | None = None  # a session default; catalog names carry their schema anyway
    snowflake_host: str | None = None
    snowflake_port: int | None = None
    snowflake_protocol: str | None = None

    catalog_path: str = Field("syncbot.toml", validation_alias="SYNCBOT_CATALOG")

    # How long one check may take before it is reported "unknown"; well inside Slack's patience.
    check_timeout_seconds: float = Field(8.0, validation_alias="SYNCBOT_CHECK_TIMEOUT")
    # Bounded concurrency towards Snowflake (connections kept open) and towards the whole fleet.
    snowflake_pool_size: int = Field(4, validation_alias="SYNCBOT_SNOWFLAKE_POOL")
    max_workers: int = Field(32, validation_alias="SYNCBOT_MAX_WORKERS")
    # The worker's hold on a running fix: a dead worker is taken over within one lease (the heartbeat
    # renews it three times per lease); follow steps poll DMS and Snowflake this often.
    job_lease_seconds: float = Field(30.0, validation_alias="SYNCBOT_JOB_LEASE", gt=1)
    job_poll_seconds: float = Field(30.0, validation_alias="SYNCBOT_JOB_POLL", gt=0)
    # `syncbot serve` on SIGTERM: /readyz answers 503 for `drain` seconds while requests are still
    # served (the load balancer stops sending), then new connections are refused and what was
    # acknowledged is finished within `shutdown` seconds (a diagnosis takes at most the check timeout).
    drain_seconds: float = Field(5.0, validation_alias="SYNCBOT_DRAIN_SECONDS", ge=0)
    shutdown_seconds: float = Field(20.0, validation_alias="SYNCBOT_SHUTDOWN_SECONDS", gt=0)

    @field_validator("aurora_database_url")
    @classmethod
    def _aurora_url(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and (problem := postgres_problem(value.get_secret_value())):
            raise ValueError(f"not a valid postgresql:// URL: {problem}; {ENCODING_HINT}")
        return value

    @field_validator("redis_url")
    @classmethod
    def _redis_url(cls, value: SecretStr) -> SecretStr:
        if problem := redis_problem(value.get_secret_value()):
            raise ValueError(f"not a valid redis:// URL: {problem}; {ENCODING_HINT}")
        return value

    @field_validator("redis_sentinels")
    @classmethod
    def _sentinels(cls, value: str | None) -> str | None:
        if value is not None and value.strip():
            for item in value.split(","):
                host, _, port = item.strip().rpartition(":")
                if not host or not port.isdigit():
                    raise ValueError("a comma-separated list of host:port, e.g. s1:26379,s2:26379,s3:26379")
        return value

    @property
    def sentinel_addresses(self) -> list[tuple[str, int]]:
        if not self.redis_sentinels or not self.redis_sentinels.strip():
            return []
        pairs = [item.strip().rpartition(":") for item in self.redis_sentinels.split(",")]
        return [(host.strip("[]"), int(port)) for host, _, port in pairs]

    @property
    def min_replicas(self) -> int:
        if self.redis_min_replicas is not None:
            return self.redis_min_replicas
        return 1 if self.sentinel_addresses else 0

    @field_validator("snowflake_account")
    @classmethod
    def _account(cls, value: str | None) -> str | None:
        if value is not None and not _ACCOUNT.match(value):
            raise ValueError("an account identifier has only letters, digits, '.', '-' and '_' (e.g. myorg-myaccount)")
        return value

    @field_validator("snowflake_host")
    @classmethod
    def _host(cls, value: str | None) -> str | None:
        if value is not None and not _HOST.match(value):
            raise ValueError("a host name has only letters, digits, '.' and '-'")
        return value

    @field_validator("snowflake_protocol")
    @classmethod
    def _protocol(cls, value: str | None) -> str | None:
        if value is not None and value not in ("http", "https"):
            raise ValueError("must be http or https")
        return value

    def snowflake_connect_args(self) -> dict:
        """Arguments for snowflake.connector.connect; the connector's own host/port/protocol pass through."""
        args: dict = {
            "account": self.snowflake_account,
            "user": self.snowflake_user,
            "role": self.snowflake_role,
            "warehouse": self.snowflake_warehouse,
            "database": self.snowflake_database,
            "schema": self.snowflake_schema,
            "host": self.snowflake_host,
            "port": self.snowflake_port,
            "protocol": self.snowflake_protocol,
            "login_timeout": 10,
            "network_timeout": 30,
            # Connector 4.x runs "platform detection" before every login: sts:GetCallerIdentity with the
            # bot's AWS credentials and probes of the EC2/Azure/GCP metadata endpoints, up to 200 ms a
            # login, only to fill CLIENT_ENVIRONMENT.PLATFORM in the login request (telemetry; no part of
            # authentication reads it). 0 skips those network probes; the connector's checks of
            # environment variables still run. SNOWFLAKE_DISABLE_PLATFORM_DETECTION=true would do it for
            # every connection of the process; this keeps the choice with the bot's other connect args.
            "platform_detection_timeout_seconds": 0.0,
        }
        if self.snowflake_password is not None:
            args["password"] = self.snowflake_password.get_secret_value()
        if self.snowflake_private_key_file:
            args["private_key_file"] = self.snowflake_private_key_file
        if self.snowflake_private_key_file_pwd is not None:
            args["private_key_file_pwd"] = self.snowflake_private_key_file_pwd.get_secret_value()
        return {k: v for k, v in args.items() if v is not None}


def load_settings(**overrides) -> Settings:
    """Settings for a command, validated once at start-up; SettingsError names what is wrong."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        # Each error's "msg" is pydantic's or ours, neither quotes the input; exc's own text would.
        problems = [f"{str(e['loc'][0]).upper()}: {e['msg'].removeprefix('Value error, ')}" for e in exc.errors()]
        raise SettingsError("; ".join(problems)) from None
