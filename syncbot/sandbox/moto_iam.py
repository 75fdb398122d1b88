"""What moto's IAM lacks and `syncbot doctor` relies on: SimulatePrincipalPolicy, answered by moto's own
policy evaluator (the one its IAM enforcement uses) over the principal's inline, attached and group
policies. Conditions and resource policies are not simulated, as moto does not enforce them either."""
from __future__ import annotations

from typing import Any

from moto.core.responses import ActionResult
from moto.iam import responses
from moto.iam.access_control import IAMPolicy, PermissionResult
from moto.iam.exceptions import NotFoundException

_installed = False


def install() -> None:
    """Idempotent; adds the operation to the response class moto dispatches IAM calls to."""
    global _installed
    if _installed:
        return
    _installed = True
    responses.IamResponse.simulate_principal_policy = _simulate_principal_policy


def _simulate_principal_policy(self: Any) -> ActionResult:
    source = self._get_param("PolicySourceArn")
    actions = self._get_param("ActionNames", [])
    resources = self._get_param("ResourceArns", []) or ["*"]
    policies = _policies(self.backend, source)
    results = [{"EvalActionName": action, "EvalResourceName": resource,
                "EvalDecision": _decide(policies, action, resource)}
               for action in actions for resource in resources]
    return ActionResult({"EvaluationResults": results, "IsTruncated": False})


def _decide(policies: list[Any], action: str, resource: str) -> str:
    decision = "implicitDeny"
    for policy in policies:
        result = IAMPolicy(policy).is_action_permitted(action, resource)
        if result == PermissionResult.DENIED:
            return "explicitDeny"
        if result == PermissionResult.PERMITTED:
            decision = "allowed"
    return decision


def _policies(backend: Any, arn: str) -> list[Any]:
    kind, _, name = arn.split(":", 5)[-1].partition("/")
    name = name.rsplit("/", 1)[-1]
    if kind == "user":
        backend.get_user(name)  # NoSuchEntity for an unknown user, as AWS answers
        found: list[Any] = [backend.get_user_policy(name, p) for p in backend.list_user_policies(name)]
        found += list(backend.list_attached_user_policies(name)[0])
        for group in backend.get_groups_for_user(name):
            found += [backend.get_group_policy(group.name, p) for p in backend.list_group_policies(group.name)]
            found += list(backend.list_attached_group_policies(group.name)[0])
        return found
    if kind == "role":
        found = [backend.get_role_policy(name, p)[1] for p in backend.list_role_policies(name)]
        return found + list(backend.list_attached_role_policies(name)[0])
    raise NotFoundException(f"{arn} is not a user or role this account knows")
