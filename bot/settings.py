"""Process settings from the environment (and an optional .env), names fixed by the deployment contract."""
from __future__ import annotations

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore", populate_by_name=True)

    slack_bot_token: SecretStr | None = None
    slack_signing_secret: SecretStr | None = None
    slack_app_token: SecretStr | None = None  # Socket Mode when set
    slack_api_url: str = "https://slack.com/api/"

    redis_url: SecretStr = SecretStr("redis://localhost:6379/0")
    aurora_database_url: SecretStr | None = None

    snowflake_account: str | None = None
    snowflake_user: str | None = None
    snowflake_password: SecretStr | None = None
    snowflake_private_key_file: str | None = None
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
        return {k: v for k, v in args.items() if v is not None}
