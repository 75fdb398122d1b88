"""`syncbot doctor` against a whole deployment of real parts: Slack through the local Web API stand-in,
the machine's Redis and PostgreSQL, AWS in moto with IAM enforcement on (the bot signs as an IAM user
holding the README's policies), Snowflake tables in fakesnow. Each broken set-up must be named by
exactly one failing line."""
import json
import re
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

import boto3
import psycopg
import pytest
import redis as redis_lib
from moto.core.authorization import enable_iam_authentication
from redis.backoff import NoBackoff
from redis.retry import Retry
from snowflake.connector.errors import ProgrammingError

from bot.doctor import READ_ACTIONS, REMEDIATION_ACTIONS, Backends, examine
from bot.gateways.dms import DmsGateway
from bot.gateways.iam import IamGateway, policy_source
from bot.gateways.s3 import S3Gateway
from bot.gateways.snowflake import SnowflakeGateway, _domain_error, parse_pipe_status
from bot.models import Status
from bot.services import redacted_url
from bot.settings import Settings
from handlers.app import web_client
from fakeslack import FakeSlack
from syncbot.sandbox import moto_iam
from syncbot.sandbox.pipeline import CATALOG_TOML, Sandbox
from syncbot.slack_check import manifest_scopes, slack_lines

ROOT = Path(__file__).resolve().parents[1]
MANIFEST = ROOT / "manifest.yml"
README = (ROOT / "README.md").read_text()


def readme_policy(marker: str) -> dict:
    block = re.search(rf"<!-- {marker} -->\s*```json\n(.*?)```", README, flags=re.S)
    return json.loads(block.group(1))


def actions(policy: dict) -> set[str]:
    return {a for statement in policy["Statement"] for a in statement["Action"]}


def test_readme_policies_grant_exactly_what_the_bot_calls():
    assert actions(readme_policy("iam-read-policy")) == set(READ_ACTIONS) | {"iam:SimulatePrincipalPolicy"}
    assert actions(readme_policy("iam-remediation-policy")) == set(REMEDIATION_ACTIONS)


def test_policy_source_of_an_assumed_role_session_is_its_role():
    assert policy_source("arn:aws:sts::123456789012:assumed-role/syncbot/i-0abc") == \
        "arn:aws:iam::123456789012:role/syncbot"
    assert policy_source("arn:aws:iam::123456789012:user/syncbot") == "arn:aws:iam::123456789012:user/syncbot"


class RoleSnowflake(SnowflakeGateway):
    """Tables through the real connector API on fakesnow. fakesnow has neither roles nor Snowpipe, so
    the session's role and what it may see of pipes are modelled here, answering as Snowflake does:
    SYSTEM$PIPE_STATUS needs MONITOR (or OWNERSHIP) on the pipe, else "does not exist or not authorized"."""

    def __init__(self, fake, role, monitored):
        super().__init__(lambda: fake.connect(database="SYNC", schema="PUBLIC"))
        self.role, self.monitored = role, set(monitored)

    def current_role(self):
        return self.role

    def pipe_status(self, pipe):
        if pipe not in self.monitored:
            raise _domain_error(ProgrammingError(
                msg=f"SQL compilation error:\nPipe 'SYNC.{pipe}' does not exist or not authorized.", errno=2003))
        return parse_pipe_status('{"executionState": "RUNNING", "pendingFileCount": 0}')


class World:
    """One working deployment for the module (building it is the slow part); each test breaks one piece
    through `Deployment` and the piece is put back before the next test."""

    def __init__(self, pg_dsn):
        self.sandbox = Sandbox("healthy", aurora_dsn=pg_dsn)
        self.slack = FakeSlack()
        self.pg_dsn = pg_dsn
        moto_iam.install()
        self.iam = boto3.client("iam", region_name="us-east-1")
        self.iam.create_user(UserName="syncbot")
        key = self.iam.create_access_key(UserName="syncbot")["AccessKey"]
        self.session = boto3.session.Session(aws_access_key_id=key["AccessKeyId"],
                                             aws_secret_access_key=key["SecretAccessKey"], region_name="us-east-1")

    def close(self):
        self.slack.close()
        self.sandbox.close()


@pytest.fixture(scope="module")
def world(pg_dsn):
    built = World(pg_dsn)
    yield built
    built.close()


class Deployment:
    def __init__(self, world, redis, tmp_path):
        self.world, self.sandbox, self.slack, self.pg_dsn = world, world.sandbox, world.slack, world.pg_dsn
        self.iam = world.iam
        for name in self.iam.list_user_policies(UserName="syncbot")["PolicyNames"]:
            self.iam.delete_user_policy(UserName="syncbot", PolicyName=name)
        self.grant("read", readme_policy("iam-read-policy"))
        self.grant("remediation", readme_policy("iam-remediation-policy"))
        session = world.session
        pipes = [spec.pipe for spec in self.sandbox.catalog.tables]
        self.backends = Backends(
            dms=DmsGateway(session.client("dms"), session.client("cloudwatch"), session.client("logs")),
            s3=S3Gateway(session.client("s3")),
            iam=IamGateway(session.client("sts"), session.client("iam")),
            aurora=self.sandbox.aurora,
            snowflake=RoleSnowflake(self.sandbox.fakesnow, "SYNCBOT", pipes),
            redis=redis, redis_where="redis://127.0.0.1:6379/13")
        self.catalog = tmp_path / "syncbot.toml"
        self.catalog.write_text(CATALOG_TOML)
        self.token = "xoxb-good"
        self.slack.valid_tokens = {"xoxb-good"}
        self.slack.scopes = tuple(manifest_scopes(MANIFEST))

    def grant(self, name, policy):
        """The policy as moto can enforce it. Three quirks: moto names CloudWatch's actions by its signing
        name, "monitoring" (IAM says "cloudwatch"), and authorizes iam:SimulatePrincipalPolicy and
        logs:FilterLogEvents against resource "*" (AWS: the simulated principal, the log group)."""
        policy = json.loads(json.dumps(policy))
        for statement in policy["Statement"]:
            statement["Action"] += [a.replace("cloudwatch:", "monitoring:") for a in statement["Action"]
                                    if a.startswith("cloudwatch:")]
            if {"iam:SimulatePrincipalPolicy", "logs:FilterLogEvents"} & set(statement["Action"]):
                statement["Resource"] = "*"
        self.iam.put_user_policy(UserName="syncbot", PolicyName=name, PolicyDocument=json.dumps(policy))

    def run(self, read_only=False):
        settings = Settings(_env_file=None, catalog_path=str(self.catalog), slack_signing_secret="s3cret",
                            snowflake_database="SYNC")
        client = web_client(self.token, self.slack.api_url)
        with enable_iam_authentication():
            return examine(settings, self.backends, lambda: slack_lines(client, MANIFEST), read_only=read_only)


@pytest.fixture
def deployment(world, redis, tmp_path):
    return Deployment(world, redis, tmp_path)


@contextmanager
def renamed(execute, schema, table):
    """A table out of the way for one test, back afterwards."""
    execute(f"ALTER TABLE {schema}.{table} RENAME TO {table}_gone")
    try:
        yield
    finally:
        execute(f"ALTER TABLE {schema}.{table}_gone RENAME TO {table}")


def failing(report):
    """Every line that is not OK, but the test servers' own warnings: no logical slot (wal_level=replica)
    and a Redis without an append-only file."""
    return [line for line in report.lines if line.status is not Status.OK and line.subject != "connection"
            and line.area != "Redis" or line.status is Status.FAILING]


def test_a_complete_deployment_is_ready(deployment):
    report = deployment.run()
    assert failing(report) == [] and report.ok
    [redis_line, slot] = sorted((line for line in report.lines if line.status is not Status.OK), key=lambda l: l.area,
                                reverse=True)
    assert (slot.area, slot.status) == ("Aurora", Status.WARNING) and "no logical replication slot" in slot.detail
    assert (redis_line.area, redis_line.status) == ("Redis", Status.WARNING)
    assert "persistence (appendonly) is off" in redis_line.detail and "appendonly yes" in redis_line.fix
    subjects = [(line.area, line.subject) for line in report.lines]
    for expected in [("Slack", "token"), ("Slack", "scopes"), ("Redis", "redis://127.0.0.1:6379/13"),
                     ("Aurora", "public.orders"), ("Snowflake", "STAGING.ORDERS_CDC"),
                     ("Snowflake", "pipe STAGING.PAYMENTS_PIPE"),
                     ("AWS", "dms:DescribeReplicationTasks (task aurora-snowflake-cdc)"),
                     ("AWS", "cloudwatch:GetMetricData (instance dms-prod)"),
                     ("AWS", "logs:FilterLogEvents (task aurora-snowflake-cdc)"),
                     ("AWS", "s3:GetLifecycleConfiguration (bucket acme-cdc)"),
                     ("AWS", "dms:ReloadTables (task aurora-snowflake-cdc)")]:
        assert expected in subjects
    assert "Ready." in report.text()


def test_bad_slack_token(deployment):
    deployment.token = "xoxb-revoked"
    [line] = failing(deployment.run())
    assert (line.area, line.subject, line.status) == ("Slack", "token", Status.FAILING)
    assert "invalid_auth" in line.detail and "SLACK_BOT_TOKEN" in line.fix
    assert "xoxb-revoked" not in deployment.run().text()


def test_token_without_a_manifest_scope(deployment):
    deployment.slack.scopes = ("commands",)
    [line] = failing(deployment.run())
    assert (line.area, line.subject) == ("Slack", "scopes") and "chat:write" in line.detail
    assert "reinstall" in line.fix


def test_table_missing_in_aurora(deployment):
    with psycopg.connect(deployment.pg_dsn, autocommit=True) as conn:
        with renamed(conn.execute, "public", "payments"):
            [line] = failing(deployment.run())
    assert (line.area, line.subject, line.status) == ("Aurora", "public.payments", Status.FAILING)
    assert "GRANT SELECT ON public.payments" in line.fix


def test_staging_table_missing_in_snowflake(deployment):
    cursor = deployment.sandbox.fakesnow.connect(database="SYNC", schema="PUBLIC").cursor()
    with renamed(cursor.execute, "STAGING", "CUSTOMERS_CDC"):
        [line] = failing(deployment.run())
    assert (line.area, line.subject) == ("Snowflake", "STAGING.CUSTOMERS_CDC")
    assert "`staging_table` for customers" in line.fix
    assert "GRANT SELECT ON TABLE SYNC.STAGING.CUSTOMERS_CDC TO ROLE SYNCBOT;" in line.fix


def test_wrong_snowflake_role_cannot_see_a_pipe(deployment):
    deployment.backends.snowflake = RoleSnowflake(deployment.sandbox.fakesnow, "ANALYST",
                                                  ["STAGING.CUSTOMERS_PIPE", "STAGING.PAYMENTS_PIPE"])
    [line] = failing(deployment.run())
    assert (line.area, line.subject) == ("Snowflake", "pipe STAGING.ORDERS_PIPE")
    assert "role ANALYST" in line.detail
    assert line.fix.endswith("GRANT MONITOR ON PIPE SYNC.STAGING.ORDERS_PIPE TO ROLE ANALYST;")


def test_unreachable_redis(deployment):
    deployment.backends.redis = redis_lib.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.5,
                                                retry=Retry(NoBackoff(), 0))
    deployment.backends.redis_where = redacted_url("redis://:hunter2@127.0.0.1:1/0")
    report = deployment.run()
    [line] = failing(report)
    assert (line.area, line.subject) == ("Redis", "redis://127.0.0.1:1/0") and "does not answer" in line.detail
    assert "hunter2" not in report.text()


def test_missing_read_permission_names_the_action(deployment):
    policy = readme_policy("iam-read-policy")
    policy["Statement"][2]["Action"] = ["s3:ListBucket"]  # no s3:GetLifecycleConfiguration
    deployment.grant("read", policy)
    [line] = failing(deployment.run())
    assert line.subject == "s3:GetLifecycleConfiguration (bucket acme-cdc)" and "denied" in line.detail
    assert "allow s3:GetLifecycleConfiguration" in line.fix


def test_missing_task_log_permission_names_the_action(deployment):
    policy = readme_policy("iam-read-policy")
    policy["Statement"] = [s for s in policy["Statement"] if s["Sid"] != "DmsTaskLogs"]
    deployment.grant("read", policy)
    [line] = failing(deployment.run())
    assert line.subject == "logs:FilterLogEvents (task aurora-snowflake-cdc)" and line.status is Status.FAILING
    assert "denied" in line.detail and "allow logs:FilterLogEvents" in line.fix


def test_task_logging_off_is_a_warning_with_the_setting(deployment):
    logs = deployment.sandbox.logs_client
    [group] = logs.describe_log_groups(logGroupNamePrefix="dms-tasks-")["logGroups"]
    logs.delete_log_group(logGroupName=group["logGroupName"])
    try:
        report = deployment.run()
    finally:
        deployment.sandbox.seed_task_log()
    [line] = failing(report)
    assert line.subject == "logs:FilterLogEvents (task aurora-snowflake-cdc)" and line.status is Status.WARNING
    assert "logging is off (no log group dms-tasks-dms-prod)" in line.detail
    assert "Logging.EnableLogging" in line.fix and report.ok


def test_an_unknown_task_skips_its_log_read(deployment):
    deployment.catalog.write_text(CATALOG_TOML.replace('dms_task = "aurora-snowflake-cdc"', 'dms_task = "no-such-task"'))
    report = deployment.run()
    by_subject = {line.subject: line for line in report.lines}
    assert by_subject["dms:DescribeReplicationTasks (task no-such-task)"].status is Status.FAILING
    skipped = by_subject["logs:FilterLogEvents (task no-such-task)"]
    assert skipped.status is Status.UNKNOWN and skipped.detail == "not checked: needs the task"


def test_missing_remediation_permission_is_found_by_simulation(deployment):
    deployment.grant("remediation", {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": ["dms:StartReplicationTask", "dms:StopReplicationTask"], "Resource": "*"}]})
    report = deployment.run()
    [line] = failing(report)
    assert line.subject == "dms:ReloadTables (task aurora-snowflake-cdc)" and line.status is Status.FAILING
    assert "implicitDeny" in line.detail and not report.ok
    relaxed = deployment.run(read_only=True)
    assert [l.status for l in failing(relaxed)] == [Status.WARNING] and relaxed.ok


def test_without_simulation_rights_remediation_is_listed_unchecked(deployment):
    policy = readme_policy("iam-read-policy")
    policy["Statement"] = [s for s in policy["Statement"] if s["Sid"] != "DoctorSelfCheck"]
    deployment.grant("read", policy)
    report = deployment.run()
    [line] = failing(report)
    assert line.status is Status.WARNING and line.subject == "remediation calls (task aurora-snowflake-cdc)"
    assert all(action in line.detail for action in REMEDIATION_ACTIONS) and report.ok


def test_broken_catalog_is_named_and_stops_the_table_checks(deployment):
    deployment.catalog.write_text(CATALOG_TOML.replace('name = "customers"', 'name = "customers"\nflavour = "x"'))
    report = deployment.run()
    catalog = next(line for line in report.lines if line.area == "Catalog")
    assert catalog.status is Status.FAILING and "unknown key `flavour`" in catalog.detail
    assert {line.subject for line in report.lines if line.status is Status.UNKNOWN} == {
        "tables", "tables and pipes", "API permissions"}
    assert not report.ok


def test_cli_doctor_exits_non_zero_when_something_is_missing(tmp_path):
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "SYNCBOT_CATALOG": str(tmp_path / "none.toml"),
           "REDIS_URL": "redis://127.0.0.1:1/0", "AWS_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": "x",
           "AWS_SECRET_ACCESS_KEY": "x", "AWS_ENDPOINT_URL": "http://127.0.0.1:1"}
    result = subprocess.run([sys.executable, "-m", "syncbot.cli", "doctor", "--manifest", str(MANIFEST)],
                            capture_output=True, text=True, timeout=120, env=env, cwd=tmp_path)
    assert result.returncode == 1, result.stderr
    out = result.stdout
    assert "[FAIL] Catalog   catalog: " in out and "point SYNCBOT_CATALOG at the catalog file" in out
    assert "[FAIL] Slack     token: SLACK_BOT_TOKEN is not set" in out
    assert "[FAIL] Redis     redis://127.0.0.1:1/0: does not answer" in out
    assert "[FAIL] Aurora    connection: AURORA_DATABASE_URL is not set" in out
    assert out.rstrip().endswith("Not ready: fix the lines marked FAIL (and ???? once they can run).")


def test_redis_with_an_append_only_file_is_ok():
    from bot.doctor import Backends, _redis

    class Aof:
        def ping(self):
            return True

        def info(self, section):
            return {"aof_enabled": 1} if section == "persistence" else {}

    line = _redis(Backends(dms=None, s3=None, iam=None, aurora=None, snowflake=None, redis=Aof()))
    assert line.status is Status.OK and "append-only file on" in line.detail
