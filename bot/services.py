"""The only place real clients are created, from Settings."""
from __future__ import annotations

import os
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

import boto3
import botocore.session
import redis
import snowflake.connector
from botocore.config import Config
from botocore.exceptions import NoRegionError
from botocore.utils import parse_timestamp

from .catalog import Catalog, load_catalog
from .core import SyncBot
from .diagnostics.runner import LANE_WIDTH, Diagnoser
from .gateways import Gateways
from .doctor import Backends
from .gateways.aurora import AuroraGateway
from .gateways.dms import DmsGateway
from .gateways.iam import IamGateway
from .gateways.s3 import S3Gateway
from .gateways.snowflake import SnowflakeGateway
from . import redis_conn
from .settings import Settings

# botocore's standard retry mode (throttling and transient errors, with backoff), short timeouts so a
# slow AWS costs one check, not the whole answer.
AWS_CONFIG = Config(retries={"mode": "standard", "max_attempts": 3}, connect_timeout=3, read_timeout=5,
                    max_pool_connections=32)


def aws_session(region_name: str | None = None, **credentials: str) -> boto3.session.Session:
    """boto3 reads AWS_DEFAULT_REGION; the README (like AWS's newer SDKs) says AWS_REGION: take either.
    Its clients read response times with aws_timestamp."""
    core = botocore.session.get_session()
    core.get_component("response_parser_factory").set_parser_defaults(timestamp_parser=aws_timestamp)
    return boto3.session.Session(region_name=region_name or os.environ.get("AWS_REGION") or None,
                                 botocore_session=core, **credentials)


def aws_timestamp(value: Any) -> datetime:
    """AWS's XML answers carry ISO 8601 times ("2026-11-29T03:04:05.000Z"), one per object of every S3
    listing, which datetime reads at a fraction of the cost of botocore's default (dateutil's general
    parser, a fifth of the bot's CPU in a 500-table round). Anything else, or a time without a zone,
    goes to botocore's own parser, so the answers are the same."""
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            parsed = None
        if parsed is not None and parsed.tzinfo is not None:
            return parsed
    return parse_timestamp(value)


def build_gateways(settings: Settings) -> Gateways:
    session = aws_session()
    args = settings.snowflake_connect_args()
    if settings.aurora_database_url is None:
        raise ValueError("AURORA_DATABASE_URL is not set")
    return Gateways(
        dms=DmsGateway(session.client("dms", config=AWS_CONFIG), session.client("cloudwatch", config=AWS_CONFIG),
                       session.client("logs", config=AWS_CONFIG)),
        s3=S3Gateway(session.client("s3", config=AWS_CONFIG)),
        snowflake=SnowflakeGateway(lambda: snowflake.connector.connect(**args), settings.snowflake_pool_size,
                                   read_timeout_s=settings.check_timeout_seconds),
        aurora=AuroraGateway(settings.aurora_database_url.get_secret_value()),
    )


def build_redis(settings: Settings) -> redis.Redis:
    """The primary (through Sentinel when configured: bot/redis_conn.py)."""
    return redis_conn.connect(settings)


def build_queue_redis(settings: Settings) -> redis.Redis:
    """For RQ's worker loop: it waits for jobs with a blocking pop of several minutes, which a 2 s socket
    timeout turns into "could not connect" and an exponential back-off (a new worker then sat idle for a
    minute before taking over a dead one's re-sync). Keepalives and health checks find a dead Redis."""
    return redis_conn.connect(settings, blocking=True)


def build_bot(settings: Settings) -> SyncBot:
    """The bot of `serve` and `worker`, on the real backends the settings name."""
    return assemble(load_catalog(settings.catalog_path), build_gateways(settings), build_redis(settings),
                    timeout=settings.check_timeout_seconds, max_workers=settings.max_workers)


def assemble(catalog: Catalog, gateways: Gateways, redis_client: Any, *, timeout: float = 8.0,
             max_workers: int = LANE_WIDTH["s3"]) -> SyncBot:
    """The one place a SyncBot is put together: from settings (build_bot), or on the sandbox's or the
    benchmark's backends (the console, `--sandbox`, the tests' harness, the benchmark)."""
    return SyncBot(catalog, Diagnoser(gateways, timeout, max_workers), redis_client)


def build_doctor_backends(settings: Settings) -> Backends:
    """Every backend `syncbot doctor` probes, each built on its own so one missing setting costs only
    its own lines."""
    aws_problem = ""
    dms = s3 = iam = None
    try:
        session = aws_session()
        dms = DmsGateway(session.client("dms", config=AWS_CONFIG), session.client("cloudwatch", config=AWS_CONFIG),
                         session.client("logs", config=AWS_CONFIG))
        s3 = S3Gateway(session.client("s3", config=AWS_CONFIG))
        iam = IamGateway(session.client("sts", config=AWS_CONFIG), session.client("iam", config=AWS_CONFIG))
    except NoRegionError:
        aws_problem = "no AWS region configured (AWS_REGION)"
    args = settings.snowflake_connect_args()
    sf = (SnowflakeGateway(lambda: snowflake.connector.connect(**args), 1, read_timeout_s=settings.check_timeout_seconds)
          if settings.snowflake_account and settings.snowflake_user else None)
    aurora = AuroraGateway(settings.aurora_database_url.get_secret_value()) if settings.aurora_database_url else None
    url = settings.redis_url.get_secret_value()
    try:
        client = build_redis(settings)
    except ValueError:
        client = None
    return Backends(dms=dms, s3=s3, iam=iam, aurora=aurora, snowflake=sf, redis=client,
                    redis_where=redacted_url(url), aws_problem=aws_problem)


def redacted_url(url: str) -> str:
    """scheme://host:port/db, without the user and password a Redis URL may carry."""
    parts = urlsplit(url)
    host = f"{parts.hostname}:{parts.port}" if parts.port else (parts.hostname or "")
    return f"{parts.scheme}://{host}{parts.path}"
