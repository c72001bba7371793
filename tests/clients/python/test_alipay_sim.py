"""An independent Alipay SDK against `paygate sim alipay`.

PyPI python-alipay-sdk 3.4.0, unmodified but for its gateway URL, runs precreate / query / refund / refund query /
close against the simulator. The SDK signs every request itself (RSA2 with the app key, GET query) and verifies
every answer's signature over the raw response node with the Alipay public key the simulator printed; a wrong
Alipay key must make it fail. A notification the simulator sends is verified with the SDK's own `verify`.

Needs: PAYGATE_BIN (the paygate binary); nothing else (no paygate server, no database).
"""

import io
import json
import os
import queue
import subprocess
import threading
import time
import uuid
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl

import pytest
import requests
from alipay import AliPay
from alipay.exceptions import AliPayException, AliPayValidationError
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

APP_ID = "2021000000000001"


def keypair():
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    # PKCS#1, the form Alipay's key tool writes.
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                                serialization.NoEncryption()).decode()
    public = key.public_key().public_bytes(serialization.Encoding.PEM,
                                           serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    return private, public


class Receiver:
    """The merchant's notify_url: records every form; answers `fail` to the first `fail_first`."""

    def __init__(self):
        self.received = queue.Queue()
        self.fail_first = 0
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", "0"))).decode()
                failing = receiver.fail_first > 0
                if failing:
                    receiver.fail_first -= 1
                else:
                    receiver.received.put(body)
                self.send_response(200)
                self.send_header("Content-Type", "text/plain")
                self.end_headers()
                self.wfile.write(b"fail" if failing else b"success")

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/alipay/notify"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def next(self, out_trade_no, timeout=10):
        """The next notification about `out_trade_no`, as a dict (others are skipped)."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            form = dict(parse_qsl(self.received.get(timeout=max(0.01, deadline - time.time())),
                                  keep_blank_values=True))
            if form.get("out_trade_no") == out_trade_no:
                return form
        raise AssertionError(f"no notification about {out_trade_no} within {timeout}s")


@pytest.fixture(scope="module")
def app_key():
    return keypair()


@pytest.fixture(scope="module")
def sim(tmp_path_factory, app_key):
    binary = os.environ.get("PAYGATE_BIN")
    if not binary:
        pytest.skip("PAYGATE_BIN is not set")
    receiver = Receiver()
    config = {"apps": [{"app_id": APP_ID, "app_public_key_pem": app_key[1]}], "notify_time_scale": 1000}
    path = tmp_path_factory.mktemp("sim") / "alipay.json"
    path.write_text(json.dumps(config))
    proc = subprocess.Popen([binary, "sim", "alipay", "--listen", "127.0.0.1:0", "--config", str(path)],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        line = proc.stdout.readline()
        assert line, "the simulator printed nothing"
        info = json.loads(line)
        info["base"] = "http://" + info["listen"]
        info["receiver"] = receiver
        yield info
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        receiver.server.shutdown()


def client(sim, app_key, alipay_public_key=None):
    sdk = AliPay(appid=APP_ID, app_notify_url=sim["receiver"].url, app_private_key_string=app_key[0],
                 alipay_public_key_string=alipay_public_key or sim["alipay_public_key_pem"], sign_type="RSA2")
    # The only change: the gateway URL.
    sdk._gateway = sim["base"] + "/gateway.do"
    return sdk


def sim_api(sim, path, body):
    r = requests.post(sim["base"] + "/sim/alipay/" + path, json=body, timeout=10)
    assert r.status_code == 200, r.text
    return r.json()


def new_no():
    return "py" + uuid.uuid4().hex[:20]


def test_precreate_pay_query_refund_close(sim, app_key):
    sdk = client(sim, app_key)
    no = new_no()
    created = sdk.api_alipay_trade_precreate(subject="测试商品", out_trade_no=no, total_amount="12.30")
    assert created["code"] == "10000", created
    assert created["qr_code"].startswith(sim["base"])
    # Not scanned: Alipay does not know the trade yet.
    assert sdk.api_alipay_trade_query(out_trade_no=no)["sub_code"] == "ACQ.TRADE_NOT_EXIST"
    requests.get(created["qr_code"], timeout=10).raise_for_status()
    assert sdk.api_alipay_trade_query(out_trade_no=no)["trade_status"] == "WAIT_BUYER_PAY"

    sim["receiver"].fail_first = 1  # the first notification is refused: Alipay retries
    sim_api(sim, "pay", {"app_id": APP_ID, "out_trade_no": no})
    form = sim["receiver"].next(no)
    assert form["out_trade_no"] == no and form["trade_status"] == "TRADE_SUCCESS"
    assert form["total_amount"] == "12.30" and form["app_id"] == APP_ID
    signature = form.pop("sign")
    assert sdk.verify(dict(form), signature), "the SDK's own notify verification"
    tampered = dict(form, total_amount="1230.00")
    assert not sdk.verify(tampered, signature)

    queried = sdk.api_alipay_trade_query(out_trade_no=no)
    assert queried["trade_status"] == "TRADE_SUCCESS" and queried["total_amount"] == "12.30"

    refund = sdk.api_alipay_trade_refund(refund_amount="2.30", out_trade_no=no, out_request_no="r1")
    assert refund["code"] == "10000" and refund["fund_change"] == "Y" and refund["refund_fee"] == "2.30"
    again = sdk.api_alipay_trade_refund(refund_amount="2.30", out_trade_no=no, out_request_no="r1")
    assert again["fund_change"] == "N", "the same out_request_no is the same refund"
    too_much = sdk.api_alipay_trade_refund(refund_amount="10.01", out_trade_no=no, out_request_no="r2")
    assert too_much["code"] == "40004" and too_much["sub_code"] == "ACQ.REFUND_AMT_NOT_EQUAL_TOTAL"
    rq = sdk.api_alipay_trade_fastpay_refund_query("r1", out_trade_no=no)
    assert rq["refund_status"] == "REFUND_SUCCESS" and rq["refund_amount"] == "2.30"

    # Close only while waiting: a paid trade refuses, a waiting one closes.
    assert sdk.api_alipay_trade_close(out_trade_no=no)["sub_code"] == "ACQ.TRADE_STATUS_ERROR"
    other = new_no()
    sdk.api_alipay_trade_precreate(subject="s", out_trade_no=other, total_amount="0.01")
    sim_api(sim, "scan", {"app_id": APP_ID, "out_trade_no": other})
    closed = sdk.api_alipay_trade_close(out_trade_no=other)
    assert closed["code"] == "10000", closed
    assert sdk.api_alipay_trade_query(out_trade_no=other)["trade_status"] == "TRADE_CLOSED"


def test_a_wrong_alipay_key_fails_verification(sim, app_key):
    _, wrong_public = keypair()
    sdk = client(sim, app_key, alipay_public_key=wrong_public)
    with pytest.raises(AliPayValidationError):
        sdk.api_alipay_trade_query(out_trade_no="whatever")
    with pytest.raises(AliPayValidationError):
        sdk.api_alipay_trade_precreate(subject="s", out_trade_no=new_no(), total_amount="0.01")


def test_a_wrong_app_key_is_refused_by_the_simulator(sim, app_key):
    wrong_private, _ = keypair()
    sdk = client(sim, (wrong_private, app_key[1]))
    answer = sdk.api_alipay_trade_query(out_trade_no="whatever")
    assert answer["code"] == "40002" and answer["sub_code"] == "isv.invalid-signature"


def test_barcode_and_bills(sim, app_key):
    sdk = client(sim, app_key)
    no = new_no()
    paid = sdk.api_alipay_trade_pay(subject="s", out_trade_no=no, scene="bar_code", auth_code="28763443825664394",
                                    total_amount="0.50")
    assert paid["code"] == "10000" and paid["total_amount"] == "0.50"
    form = sim["receiver"].next(no)
    assert form["out_trade_no"] == no
    assert sdk.verify(form, form.pop("sign"))
    sim_api(sim, "clock", {"advance_seconds": 86400})
    day = time.strftime("%Y-%m-%d", time.gmtime(time.time() + 8 * 3600))
    answer = sdk.server_api("alipay.data.dataservice.bill.downloadurl.query",
                            {"bill_type": "trade", "bill_date": day})
    assert answer["code"] == "10000", answer
    data = requests.get(answer["bill_download_url"], timeout=10).content
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        names = z.namelist()
        detail = [n for n in z.infolist() if n.filename.encode("cp437").decode("gbk").endswith("业务明细.csv")]
        assert detail, names
        text = z.read(detail[0]).decode("gbk")
    assert "支付宝交易号,商户订单号,业务类型" in text and no in text and ",0.50," in text


def test_unknown_answers_raise(sim, app_key):
    sdk = client(sim, app_key)
    sim_api(sim, "faults", {"method": "alipay.trade.query", "kind": "20000"})
    answer = sdk.api_alipay_trade_query(out_trade_no="x")
    assert answer["code"] == "20000"
    with pytest.raises(AliPayException):
        sdk._verify_and_return_sync_response('{"alipay_trade_query_response":{"code":"10000"}}',
                                             "alipay_trade_query_response")
