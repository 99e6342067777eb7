"""schemathesis against /api/openapi.json of a running product: generated requests for every
operation find no server error, and every answer matches the document."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings

from bench.ports import free_port
from tests.conftest import new_user_env
from tests.supportbridge.test_embedded_run import lines_until

pytestmark = pytest.mark.slow


@dataclass(frozen=True)
class Running:
    base: str
    token: str


@pytest.fixture(scope="module")
def product(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    """`supportbridge run` on an empty store, and an admin's API token."""
    data = tmp_path_factory.mktemp("fuzz")
    port = free_port()
    env = new_user_env(data, port)
    process = subprocess.Popen(
        [sys.executable, "-m", "supportbridge.cli", "run"],
        env=env,
        cwd=data,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        lines_until(process.stdout, "inbox:", timeout=40)
        issued = subprocess.run(
            [sys.executable, "-m", "supportbridge.cli", "user", "token", "admin", "--name", "fuzz"],
            env=env,
            cwd=data,
            capture_output=True,
            text=True,
            check=True,
        )
        token = re.search(r"sb_\S+", issued.stdout)
        assert token is not None, issued.stdout
        yield Running(f"http://127.0.0.1:{port}", token[0])
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=20)


def without_a_made_up_cursor(case: schemathesis.Case) -> schemathesis.Case:
    """A list's cursor is only ever one an earlier page answered: a generated string is refused
    with 400 by design (test_web_api checks that), which the schema cannot say."""
    if case.query:
        case.query.pop("cursor", None)
    return case


def test_no_generated_request_breaks_the_api(product: Running) -> None:
    """Every operation, with bodies and parameters generated from the document."""
    schema = schemathesis.openapi.from_url(f"{product.base}/api/openapi.json")
    headers = {"Authorization": f"Bearer {product.token}"}
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 15
    for operation in operations:

        @given(case=operation.as_strategy().map(without_a_made_up_cursor))
        @settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
        def call(case: schemathesis.Case) -> None:
            case.call_and_validate(headers=headers)

        call()


def test_the_fuzzed_product_is_still_healthy(product: Running) -> None:
    with urllib.request.urlopen(f"{product.base}/readyz", timeout=5) as response:
        assert response.status == 200
