"""wechatpayv3 2.0.x in platform-certificate mode (no WeChat Pay public key) against `paygate sim wechat` started
with `platform_certificates: true`: the SDK downloads `/v3/certificates` itself, opens the certificate with the
APIv3 key, loads it with `cryptography`'s X.509 parser, and verifies every later answer and notification by the
serial the simulator signs under. Unmodified but for its base URL (set before the constructor fetches).

Needs: PAYGATE_BIN (the paygate binary).
"""

import json
import os
import subprocess

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from wechatpayv3 import WeChatPay as V3Pay
from wechatpayv3 import WeChatPayType
from wechatpayv3.core import Core

from test_wechat_sim import API_KEY, API_V3_KEY, APPID, MCH_ID, SERIAL, Receiver, no, sim_api


@pytest.fixture(scope="module")
def merchant_key():
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()).decode()
    public = key.public_key().public_bytes(serialization.Encoding.PEM,
                                           serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    return private, public


@pytest.fixture(scope="module")
def sim(tmp_path_factory, merchant_key):
    binary = os.environ.get("PAYGATE_BIN")
    if not binary:
        pytest.skip("PAYGATE_BIN is not set")
    receiver = Receiver()
    config = {
        "merchants": [{"mch_id": MCH_ID, "appid": APPID, "api_key": API_KEY, "api_v3_key": API_V3_KEY,
                       "merchant_serial": SERIAL, "merchant_public_key_pem": merchant_key[1]}],
        "platform_certificates": True,
        "notify_time_scale": 1000,
    }
    path = tmp_path_factory.mktemp("sim") / "wechat.json"
    path.write_text(json.dumps(config))
    proc = subprocess.Popen([binary, "sim", "wechat", "--listen", "127.0.0.1:0", "--config", str(path)],
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


def test_v3_certificate_mode_downloads_verifies_and_pays(sim, merchant_key, tmp_path, monkeypatch):
    # The SDK fetches certificates in its constructor, so its base URL is set on the class first.
    monkeypatch.setattr(Core, "_gate_way", property(lambda self: sim["base"], lambda self, value: None),
                        raising=False)
    receiver = sim["receiver"]
    client = V3Pay(wechatpay_type=WeChatPayType.NATIVE, mchid=MCH_ID, private_key=merchant_key[0],
                   cert_serial_no=SERIAL, appid=APPID, apiv3_key=API_V3_KEY,
                   notify_url=receiver.url + "/v3/pay", cert_dir=str(tmp_path / "certs"))
    saved = os.listdir(tmp_path / "certs")
    assert len(saved) == 1 and saved[0].endswith(".pem"), saved
    serial = saved[0][:-4]

    out_trade_no = no()
    code, message = client.pay(description="cert mode", out_trade_no=out_trade_no, amount={"total": 300})
    assert code == 200, message  # the SDK verified the answer with the downloaded certificate
    sim_api(sim, "/sim/wechat/pay", {"out_trade_no": out_trade_no})
    _, headers, body = receiver.next("/v3/pay")
    assert headers.get("Wechatpay-Serial") == serial, headers
    notice = client.callback(headers, body)
    assert notice is not None and notice["resource"]["amount"]["total"] == 300
    code, message = client.query(out_trade_no=out_trade_no)
    assert code == 200 and json.loads(message)["trade_state"] == "SUCCESS"
