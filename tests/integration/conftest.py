"""Integration test fixtures: the real stack (tools/dev-up), real users, real bus."""
import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from berthtest import stack  # noqa: E402


def pytest_configure(config):
    if os.geteuid() != 0:
        pytest.exit("the integration tests run as root (they start system services and create users)", 2)


@pytest.fixture(scope="session", autouse=True)
def berth_stack():
    """Bring berth up once per session; leave it as found afterwards."""
    stack.dev_up()
    yield stack
    if not os.environ.get("BERTH_TESTS_KEEP_STACK"):
        stack.dev_down()


@pytest.fixture(scope="session")
def member():
    """A real non-root user in group berth."""
    stack.ensure_user(stack.MEMBER, groups=["berth"])
    return stack.MEMBER


@pytest.fixture(scope="session")
def outsider():
    """A real non-root user outside group berth."""
    stack.ensure_user(stack.OUTSIDER)
    return stack.OUTSIDER
