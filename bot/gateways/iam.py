"""Who the bot is in AWS (STS) and what its policies let it do (IAM policy simulation), for the doctor:
the calls that change things are checked without being made."""
from __future__ import annotations

import re
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

from . import GatewayError

_ASSUMED_ROLE = re.compile(r"^arn:(aws[a-z-]*):sts::(\d{12}):assumed-role/([^/]+)/[^/]+$")
_DENIED = ("AccessDenied", "AccessDeniedException", "UnauthorizedOperation")


class SimulationUnavailable(GatewayError):
    """The caller may not simulate its own policies (or the principal cannot be simulated)."""


class IamGateway:
    def __init__(self, sts_client: Any, iam_client: Any):
        self._sts = sts_client
        self._iam = iam_client

    def caller_arn(self) -> str:
        """sts:GetCallerIdentity needs no permission: it fails only without working credentials."""
        try:
            return self._sts.get_caller_identity()["Arn"]
        except NoCredentialsError:
            raise GatewayError("no AWS credentials found") from None
        except ClientError as exc:
            raise GatewayError(f"GetCallerIdentity failed: {_code(exc)}") from None
        except BotoCoreError as exc:
            raise GatewayError(f"GetCallerIdentity failed: {type(exc).__name__}") from None

    def simulate(self, principal_arn: str, actions: list[str], resource_arn: str | None = None) -> dict[str, str]:
        """iam:SimulatePrincipalPolicy: each action's EvalDecision (allowed | explicitDeny | implicitDeny)
        for the principal's own policies."""
        kwargs: dict[str, Any] = {"PolicySourceArn": policy_source(principal_arn), "ActionNames": actions}
        if resource_arn:
            kwargs["ResourceArns"] = [resource_arn]
        decisions: dict[str, str] = {}
        try:
            for page in self._iam.get_paginator("simulate_principal_policy").paginate(**kwargs):
                for result in page.get("EvaluationResults", []):
                    decisions[result["EvalActionName"]] = result["EvalDecision"]
        except ClientError as exc:
            code = _code(exc)
            if code in _DENIED or code in ("NoSuchEntity", "InvalidInput"):
                raise SimulationUnavailable(f"SimulatePrincipalPolicy failed: {code}") from None
            raise GatewayError(f"SimulatePrincipalPolicy failed: {code}") from None
        except BotoCoreError as exc:
            raise GatewayError(f"SimulatePrincipalPolicy failed: {type(exc).__name__}") from None
        return decisions


def policy_source(arn: str) -> str:
    """The IAM entity whose policies apply: an assumed-role session's role (without its path, which
    the session ARN does not carry), else the ARN itself (a user)."""
    match = _ASSUMED_ROLE.match(arn)
    if match:
        partition, account, role = match.groups()
        return f"arn:{partition}:iam::{account}:role/{role}"
    return arn


def _code(exc: ClientError) -> str:
    return exc.response.get("Error", {}).get("Code", "error")
