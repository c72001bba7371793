"""What the two official-SDK test files share: the environment tests/clients/run sets, a run id
that keeps merchant numbers unique across runs, the SDK pointed at paygate before every test, and
completing a sandbox payment the way an operator would."""
import os
import subprocess
import time

import pingpp
import pytest

ENV = os.environ
RUN = format(int(time.time() * 1000), "x")


@pytest.fixture(autouse=True)
def sdk():
    pingpp.api_base = ENV["PAYGATE_BASE"]
    pingpp.api_key = ENV["PAYGATE_KEY"]
    pingpp.private_key = None
    pingpp.private_key_path = None
    yield


def sandbox_pay(charge_id):
    """The operator's CLI completes the payment, as `paygate sandbox pay CH_ID`."""
    out = subprocess.run([ENV["PAYGATE_BIN"], "sandbox", "pay", charge_id, "--database", ENV["PAYGATE_DATABASE"]],
                         check=True, capture_output=True, text=True).stdout
    assert "succeeded" in out, out
