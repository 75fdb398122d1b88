"""For the tests that run test_resync_processes's `stack` more than once in a pytest process: moto's
DMS backend is per process, so the task and instance a previous stack seeded would make the next
seeding fail (ResourceAlreadyExistsFault). Request `clean_dms` before `stack`."""
import pytest


@pytest.fixture
def clean_dms():
    from moto.dms.models import dms_backends

    dms_backends.reset()
    yield
