"""Secrets never reach Slack, logs or the terminal: malformed connection strings stop start-up with the
variable's name and never its value; every error passes one redaction step that knows each secret."""
import json
import logging
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import SecretStr

from bot import redaction
from bot.services import assemble
from bot.doctor import DoctorReport, Line
from bot.gateways import Gateways, GatewayError
from bot.gateways.aurora import AuroraGateway
from bot.models import Status
from bot.settings import Settings, SettingsError, load_settings
from handlers.app import web_client
from syncbot.sandbox.slack import bolt_request, slash_command_body
from syncbot.wiring import wire

MANIFEST = Path(__file__).resolve().parents[1] / "manifest.yml"

# One hostile value per secret-bearing setting: the characters that break parsers and quoting. Each
# piece is marked Qz~, so a fragment a driver quotes is found as surely as the whole value.
PASSWORD_PG = "Qz~Pg%zz Qz~pa#Qz~ss/Qz~w@Qz~rd"     # unencoded %, space, #, / and @
PASSWORD_REDIS = "Qz~Rd#Qz~se/Qz~cr%Qz~et"
SECRETS = {
    "SLACK_BOT_TOKEN": "xoxb-1111-2222-Qz~BotQz~Token",
    "SLACK_SIGNING_SECRET": "Qz~signing\"Qz~secret'<&>Qz~",
    "SLACK_APP_TOKEN": "xapp-1-A0-3333-Qz~AppQz~Token",
    "SNOWFLAKE_PASSWORD": "Qz~Sf pass\"Qz~word%41#Qz~",
    "SNOWFLAKE_PRIVATE_KEY_FILE_PWD": "Qz~key phrase/Qz~with%2FQz~slash",
}


# -- start-up validation ---------------------------------------------------------------------------

@pytest.mark.parametrize("variable, value, secret", [
    ("AURORA_DATABASE_URL", "postgresql://syncbot:Qk%zzVx9@db.example:5432/app", "Qk%zzVx9"),
    ("AURORA_DATABASE_URL", "postgresql://syncbot:Qk Vx9@db.example:5432/app", "Qk Vx9"),
    ("AURORA_DATABASE_URL", "postgresql://syncbot:QkVx9@[2001:db8::1:5432/app", "QkVx9"),
    ("AURORA_DATABASE_URL", "postgresql://syncbot:Qk#Vx9/Jw@db.example:5432/app", "Qk#Vx9"),
    ("AURORA_DATABASE_URL", "postgresql://syncbot:Qk/Vx9@db.example:5432/app", "Qk/Vx9"),
    ("REDIS_URL", "redis://:Qk#Vx9@cache.example:6379/0", "Qk#Vx9"),
    ("REDIS_URL", "redis://:Qk/Vx9@cache.example:6379/0", "Qk/Vx9"),
    ("REDIS_URL", "redis://:Qk%zzVx9@cache.example:6379/0", "Qk%zzVx9"),
    ("SNOWFLAKE_ACCOUNT", "Qk org; DROP", "Qk org"),
    ("SNOWFLAKE_PORT", "443Qk", "443Qk"),
])
def test_a_malformed_setting_is_named_without_its_value(monkeypatch, variable, value, secret):
    monkeypatch.setenv(variable, value)
    with pytest.raises(SettingsError) as caught:
        load_settings(_env_file=None)
    message = str(caught.value)
    assert message.startswith(f"{variable}: ")
    assert "Qk" not in message and "Vx9" not in message, message


def test_well_formed_urls_with_encoded_passwords_and_ipv6_pass(monkeypatch):
    monkeypatch.setenv("AURORA_DATABASE_URL", "postgresql://syncbot:Pg%25zz%20pa%23ss%2Fw%40rd@[2001:db8::1]:5432/app")
    monkeypatch.setenv("REDIS_URL", "rediss://:Rd%23se%2Fcr%25et@[::1]:6380/2")
    settings = load_settings(_env_file=None)
    assert settings.redis_url.get_secret_value().startswith("rediss://")


def cli(*args, env):
    base = {"PATH": "/usr/bin:/bin", "HOME": "/tmp", "SYNCBOT_CATALOG": "/nonexistent.toml", "AWS_REGION": "us-east-1"}
    return subprocess.run([sys.executable, "-m", "syncbot.cli", *args], capture_output=True, text=True,
                          timeout=120, env={**base, **env}, cwd="/tmp")


@pytest.mark.parametrize("command", [["doctor", "--json", "--manifest", str(MANIFEST)], ["diagnose", "orders"],
                                     ["serve"], ["worker"]])
def test_every_command_refuses_a_malformed_url_at_start_up_without_printing_it(command):
    result = cli(*command, env={"AURORA_DATABASE_URL": "postgresql://syncbot:Qk%zzVx9@db.example:5432/app",
                                "SLACK_SIGNING_SECRET": "x" * 16})
    assert result.returncode in (1, 2)
    assert "AURORA_DATABASE_URL: not a valid postgresql:// URL" in result.stderr
    assert "Qk" not in result.stdout + result.stderr and "Traceback" not in result.stderr


def test_doctor_names_a_redis_url_with_an_unencoded_hash_or_slash():
    for url in ("redis://:Qk#Vx/9@127.0.0.1:1/0", "redis://:Qk/Vx9@127.0.0.1:1/0"):
        result = cli("doctor", "--manifest", str(MANIFEST), env={"REDIS_URL": url})
        assert result.returncode == 1 and "REDIS_URL: not a valid redis:// URL" in result.stderr
        assert "Qk" not in result.stdout + result.stderr and "Traceback" not in result.stderr


# -- one redaction step ----------------------------------------------------------------------------

@pytest.fixture
def hostile_settings(monkeypatch):
    """Settings holding every hostile secret; the malformed Aurora URL stands for one that got past
    start-up (model_construct skips validation), which is what the redaction step is the backstop for."""
    settings = Settings.model_construct(
        slack_bot_token=SecretStr(SECRETS["SLACK_BOT_TOKEN"]),
        slack_signing_secret=SecretStr(SECRETS["SLACK_SIGNING_SECRET"]),
        slack_app_token=SecretStr(SECRETS["SLACK_APP_TOKEN"]),
        snowflake_password=SecretStr(SECRETS["SNOWFLAKE_PASSWORD"]),
        snowflake_private_key_file_pwd=SecretStr(SECRETS["SNOWFLAKE_PRIVATE_KEY_FILE_PWD"]),
        redis_url=SecretStr(f"redis://:{PASSWORD_REDIS}@127.0.0.1:6379/4"),
        aurora_database_url=SecretStr(f"postgresql://syncbot:{PASSWORD_PG}@127.0.0.1:5432/app"))
    monkeypatch.setattr(redaction, "_active", redaction.Redactor())
    yield settings
    for handler in logging.getLogger().handlers:
        handler.removeFilter(redaction._FILTER)


ALL_SECRETS = [*SECRETS.values(), PASSWORD_PG, PASSWORD_REDIS]


def leaked(text: str) -> list[str]:
    """The secrets, or marked pieces of them, found in text."""
    return [s for s in ALL_SECRETS if s in text or json.dumps(s)[1:-1] in text] + (["a piece"] if "Qz~" in text else [])


def test_a_driver_error_echoing_the_password_never_reaches_slack_or_the_log(hostile_settings, make_sandbox,
                                                                           redis, slack, caplog):
    redaction.configure(hostile_settings)
    sandbox = make_sandbox("healthy", real_aurora=False)
    # Real libpq, given the malformed URL: it quotes the password in its error.
    aurora = AuroraGateway(hostile_settings.aurora_database_url.get_secret_value())
    snowflake = sandbox.gateways.snowflake

    def echoing_pipe_status(pipe):  # a Snowflake error quoting every other secret, at the gateway seam
        raise GatewayError("login failed: " + " | ".join(SECRETS.values()))

    snowflake.pipe_statuses = lambda pipes: {p: GatewayError("login failed: " + " | ".join(SECRETS.values()))
                                             for p in pipes}
    snowflake.pipe_status = echoing_pipe_status
    gateways = Gateways(dms=sandbox.gateways.dms, s3=sandbox.gateways.s3, snowflake=snowflake, aurora=aurora)
    bot = assemble(sandbox.catalog, gateways, redis)
    secret = "s3cret-signing"
    app = wire(bot, client=web_client("xoxb-test", slack.api_url), signing_secret=secret,
               process_before_response=True).app
    with caplog.at_level(logging.DEBUG):
        app.dispatch(bolt_request(slash_command_body("orders", "U0ALICE01", "C0INCIDNT", slack.response_url()), secret))
        try:
            aurora.replication_slots()
        except GatewayError as exc:
            logging.getLogger("syncbot.test").warning("aurora said %s", exc, exc_info=True)
            assert "invalid percent-encoded token" in str(exc)  # the driver really did echo it
            assert leaked(str(exc)) == []  # redacted in the gateway, before anyone holds the message
        logging.getLogger("syncbot.test").error("settings were %r", [s for s in ALL_SECRETS])
    sent = json.dumps([c.params for c in slack.calls])
    assert slack.of("chat.postMessage") and "[redacted]" in sent
    assert leaked(sent) == []
    assert leaked(caplog.text) == [] and "[redacted]" in caplog.text, [l for l in caplog.text.splitlines() if "Qz" in l]


def test_doctor_output_is_redacted(hostile_settings):
    redaction.configure(hostile_settings)
    report = DoctorReport((Line("Aurora", "connection", Status.FAILING,
                                f'cannot query: invalid percent-encoded token: "{PASSWORD_PG}"'),
                           Line("Snowflake", "connection", Status.FAILING, " ".join(SECRETS.values()))))
    assert leaked(report.text()) == [] and leaked(report.to_json()) == []
    assert "[redacted]" in report.to_json()


def test_url_userinfo_and_slack_tokens_are_masked_even_when_not_configured():
    redact = redaction.Redactor()
    text = redact("could not reach postgresql://app:Unknown%2Fpw@db:5432/x with xoxb-9999-8888-abcdef")
    assert "Unknown" not in text and "xoxb-9999" not in text and "postgresql://app:[redacted]@db:5432/x" in text


def test_a_fix_that_cannot_be_prepared_answers_without_the_secret(hostile_settings, harness):
    from clicks import click, diagnose  # the signed click helpers

    redaction.configure(hostile_settings)
    h = harness("pipe-paused")
    ts, buttons = diagnose(h)

    def echoing_pipe_status(pipe):
        raise GatewayError("login failed: " + " | ".join(SECRETS.values()))

    h.sandbox.snowflake.pipe_status = echoing_pipe_status
    answer = click(h, buttons["resume_pipe"], "U0ALICE01", message_ts=ts)
    assert "I could not prepare Resume pipe" in answer and "[redacted]" in answer
    assert leaked(json.dumps([c.params for c in h.slack.calls])) == []


def test_doctor_and_diagnose_print_no_secret_from_any_setting(tmp_path):
    """Every secret-bearing setting holds a hostile (well-encoded) value; every backend refuses the
    connection; DEBUG logging is on. Whatever the drivers and libraries say, neither stdout nor stderr
    carries a secret in any spelling (a regression guard: the in-process tests above are the ones that
    show the redaction step itself at work)."""
    from urllib.parse import quote

    env = {**{name: value for name, value in SECRETS.items()},
           "SLACK_API_URL": "http://127.0.0.1:1/api/",
           "REDIS_URL": f"redis://:{quote(PASSWORD_REDIS, safe='')}@127.0.0.1:1/0",
           "AURORA_DATABASE_URL": f"postgresql://syncbot:{quote(PASSWORD_PG, safe='')}@127.0.0.1:1/app",
           "AWS_DEFAULT_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "x",
           "AWS_ENDPOINT_URL": "http://127.0.0.1:1", "AWS_MAX_ATTEMPTS": "1"}
    doctor = cli("doctor", "--json", "--manifest", str(MANIFEST), env=env)
    assert doctor.returncode == 1 and json.loads(doctor.stdout)["ok"] is False
    assert "Aurora" in doctor.stdout and "Traceback" not in doctor.stderr
    catalog = tmp_path / "syncbot.toml"
    catalog.write_text('[[tables]]\nname = "orders"\nsource = "public.orders"\n')
    diagnose = cli("diagnose", "orders", "--json", env={**env, "SYNCBOT_CATALOG": str(catalog), "LOG_LEVEL": "DEBUG"})
    assert diagnose.returncode == 3, diagnose.stderr  # could not tell: every backend is down
    for result in (doctor, diagnose):
        out = result.stdout + result.stderr
        assert leaked(out) == [] and quote(PASSWORD_PG, safe="") not in out
