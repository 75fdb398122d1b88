"""One module per external system. Each method makes its calls and returns plain domain data;
known failure codes become GatewayError with a reason fit to show a user (never a secret)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the gateway modules import GatewayError from here
    from .aurora import AuroraGateway
    from .dms import DmsGateway
    from .s3 import S3Gateway
    from .snowflake import SnowflakeGateway


class GatewayError(RuntimeError):
    """A backend answered, but not with what a check needs (missing resource, permission, ...)."""


class NotFound(GatewayError):
    """The named resource does not exist (or is invisible to our credentials)."""


@dataclass
class Gateways:
    """One of each backend: what checks, plans, jobs and reports are given to read and act through."""

    dms: DmsGateway
    s3: S3Gateway
    snowflake: SnowflakeGateway
    aurora: AuroraGateway
