"""Redis Sentinel settings and the one place connections are made (bot/redis_conn.py), without servers:
which primary a process looks for, with what database, password and TLS, and how many replicas must
confirm a transition."""
import pytest
from pydantic import SecretStr
from redis.sentinel import SentinelConnectionPool, SentinelManagedConnection, SentinelManagedSSLConnection

from bot import redis_conn
from bot.doctor import Backends, Status, _replicas
from bot.redaction import secrets_of
from bot.settings import Settings, SettingsError, load_settings


def test_sentinels_make_one_replica_the_default_and_none_without_them():
    assert Settings().min_replicas == 0 and Settings().sentinel_addresses == []
    ha = Settings(redis_sentinels="s1:26379, s2:26380,[::1]:26381")
    assert ha.sentinel_addresses == [("s1", 26379), ("s2", 26380), ("::1", 26381)]
    assert ha.min_replicas == 1 and ha.redis_sentinel_master == "mymaster"
    assert Settings(redis_sentinels="s1:1", redis_min_replicas=2).min_replicas == 2
    assert Settings(redis_sentinels="s1:1", redis_min_replicas=0).min_replicas == 0


def test_a_malformed_sentinel_list_stops_start_up_naming_the_variable(monkeypatch):
    monkeypatch.setenv("REDIS_SENTINELS", "s1:26379,s2")
    with pytest.raises(SettingsError) as err:
        load_settings()
    assert "REDIS_SENTINELS" in str(err.value) and "host:port" in str(err.value)


def test_through_sentinel_the_url_still_gives_database_password_and_tls():
    settings = Settings(redis_url=SecretStr("rediss://:s3cret@ignored:6380/4"), redis_sentinels="127.0.0.1:1",
                        redis_sentinel_master="prod", redis_sentinel_password=SecretStr("sentinel-pw"))
    client = redis_conn.connect(settings)
    pool = client.connection_pool
    assert isinstance(pool, SentinelConnectionPool) and pool.service_name == "prod"
    assert pool.connection_class is SentinelManagedSSLConnection
    assert pool.connection_kwargs["db"] == 4 and pool.connection_kwargs["password"] == "s3cret"
    assert pool.sentinel_manager.sentinels[0].connection_pool.connection_kwargs["password"] == "sentinel-pw"
    plain = redis_conn.connect(Settings(redis_url=SecretStr("redis://ignored/2"), redis_sentinels="127.0.0.1:1"))
    assert plain.connection_pool.connection_class is SentinelManagedConnection
    assert redis_conn.connect(settings, blocking=True).connection_pool.connection_kwargs["socket_timeout"] is None


def test_the_sentinel_password_is_a_secret_to_mask():
    assert "sentinel-pw" in secrets_of(Settings(redis_sentinel_password=SecretStr("sentinel-pw")))


def test_the_doctor_fails_when_fewer_replicas_answer_than_must_confirm(redis):
    """The machine's Redis has no replica: fine for a single Redis, a failure when one must confirm."""
    backends = Backends(dms=None, s3=None, iam=None, aurora=None, snowflake=None, redis=redis)
    single = _replicas(backends, 0)
    assert single.status is Status.OK and "no replica" in single.detail
    needed = _replicas(backends, 1)
    assert needed.status is Status.FAILING and "every fix is refused" in needed.detail
