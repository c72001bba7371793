"""Independent WeChat Pay SDKs against `paygate sim wechat`.

PyPI wechatpy 1.8.x (API v2) and wechatpayv3 2.0.x (API v3, "WeChat Pay public key" mode), unmodified but for
their base URL, run create / query / close / refund / refund query against the simulator. wechatpayv3 verifies
every answer's signature itself; wechatpy does not, so these tests check its answers with wechatpy's own
`check_signature`. Notifications the simulator sends are verified and decrypted with the SDKs' own callback code.

Needs: PAYGATE_BIN (the paygate binary); nothing else (no paygate server, no database).
"""

import gzip
import hashlib
import json
import os
import queue
import subprocess
import threading
import time
import uuid
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests
import ipaddress

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509.oid import NameOID
from cryptography.hazmat.primitives.asymmetric import rsa
from wechatpy.exceptions import WeChatPayException
from wechatpy.pay import WeChatPay as V2Pay
from wechatpy.pay.utils import calculate_signature, calculate_signature_hmac
from wechatpayv3 import WeChatPay as V3Pay
from wechatpayv3 import WeChatPayType

MCH_ID = "1900000109"
APPID = "wxd930ea5d5a258f4f"
API_KEY = "192006250b4c09247ec02edce69f6a2d"
API_V3_KEY = "0123456789abcdefghijklmnopqrstuv"
SERIAL = "5157F09EFDC096DE15EBE81A47057A7232F1B8E1"


class Receiver:
    """The merchant's notify_url: records every notification; answers FAIL to the first `fail_first` of a path."""

    def __init__(self):
        self.received = queue.Queue()
        self.fail_first = {}
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", "0"))).decode()
                receiver.received.put((self.path, dict(self.headers), body))
                failing = receiver.fail_first.get(self.path, 0) > 0
                if failing:
                    receiver.fail_first[self.path] -= 1
                if self.path.startswith("/v3"):
                    self.send_response(500 if failing else 204)
                    self.end_headers()
                    return
                code = "FAIL" if failing else "SUCCESS"
                reply = (f"<xml><return_code><![CDATA[{code}]]></return_code>"
                         "<return_msg><![CDATA[OK]]></return_msg></xml>")
                self.send_response(200)
                self.send_header("Content-Type", "text/xml")
                self.end_headers()
                self.wfile.write(reply.encode())

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def next(self, path, timeout=10):
        deadline = time.time() + timeout
        while time.time() < deadline:
            try:
                got = self.received.get(timeout=max(0.01, deadline - time.time()))
            except queue.Empty:
                break
            if got[0] == path:
                return got
        raise AssertionError(f"no notification to {path} within {timeout}s")


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
        "merchants": [{
            "mch_id": MCH_ID, "appid": APPID, "api_key": API_KEY, "api_v3_key": API_V3_KEY,
            "merchant_serial": SERIAL, "merchant_public_key_pem": merchant_key[1],
            "refund_notify_url": receiver.url + "/v2/refund",
        }],
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


def sim_api(sim, path, body=None):
    if body is None:
        r = requests.get(sim["base"] + path, timeout=10)
    else:
        r = requests.post(sim["base"] + path, json=body, timeout=10)
    assert r.status_code == 200, r.text
    return r.json()


def v2(sim):
    client = V2Pay(appid=APPID, api_key=API_KEY, mch_id=MCH_ID)
    client.API_BASE_URL = sim["base"] + "/"
    return client


def v2_checked(client, answer):
    """wechatpy leaves response signatures to the caller: check with its own MD5 signer."""
    assert client.check_signature(dict(answer)), answer
    return answer


def v3(sim, merchant_key, notify_url=None):
    client = V3Pay(wechatpay_type=WeChatPayType.NATIVE, mchid=MCH_ID, private_key=merchant_key[0],
                   cert_serial_no=SERIAL, appid=APPID, apiv3_key=API_V3_KEY, notify_url=notify_url,
                   public_key=sim["public_key_pem"], public_key_id=sim["public_key_id"])
    client._core._gate_way = sim["base"]
    return client


def no():
    return uuid.uuid4().hex[:24]


def test_v2_native_pay_query_refund_and_notifications(sim):
    client, receiver = v2(sim), sim["receiver"]
    out_trade_no = no()
    created = v2_checked(client, client.order.create(
        trade_type="NATIVE", body="sim test", total_fee=1000, notify_url=receiver.url + "/v2/pay",
        client_ip="127.0.0.1", out_trade_no=out_trade_no, product_id="p1"))
    assert created["code_url"].startswith("weixin://wxpay/bizpayurl?pr=")
    assert created["prepay_id"]
    queried = v2_checked(client, client.order.query(out_trade_no=out_trade_no))
    assert queried["trade_state"] == "NOTPAY"

    sim_api(sim, "/sim/wechat/pay", {"out_trade_no": out_trade_no})
    _, _, body = receiver.next("/v2/pay")
    notice = client.parse_payment_result(body)  # wechatpy verifies the notification's sign
    assert notice["out_trade_no"] == out_trade_no and int(notice["total_fee"]) == 1000
    assert notice["result_code"] == "SUCCESS"

    paid = v2_checked(client, client.order.query(transaction_id=notice["transaction_id"]))
    assert paid["trade_state"] == "SUCCESS" and paid["time_end"] == notice["time_end"]

    refund_no = no()
    refund = v2_checked(client, client.refund.apply(total_fee=1000, refund_fee=300, out_refund_no=refund_no,
                                                    out_trade_no=out_trade_no))
    assert refund["refund_fee"] == "300"
    again = v2_checked(client, client.refund.apply(total_fee=1000, refund_fee=300, out_refund_no=refund_no,
                                                   out_trade_no=out_trade_no))
    assert again["refund_id"] == refund["refund_id"], "out_refund_no is idempotent"
    _, _, body = receiver.next("/v2/refund")
    info = client.parse_refund_notify_result(body)  # wechatpy checks appid/mch_id and decrypts req_info
    assert info["out_refund_no"] == refund_no and info["refund_status"] == "SUCCESS" and int(info["refund_fee"]) == 300

    with pytest.raises(WeChatPayException) as too_much:
        client.refund.apply(total_fee=1000, refund_fee=701, out_refund_no=no(), out_trade_no=out_trade_no)
    assert too_much.value.errcode == "INVALID_REQUEST"

    q = v2_checked(client, client.refund.query(out_trade_no=out_trade_no))
    assert q["refund_count"] == "1" and q["refund_status_0"] == "SUCCESS" and q["out_refund_no_0"] == refund_no


def test_v2_hmac_sha256_and_bad_signatures(sim):
    client = v2(sim)
    out_trade_no = no()
    answer = client.order.create(trade_type="JSAPI", body="hmac", total_fee=5, notify_url="http://127.0.0.1:9/n",
                                 client_ip="127.0.0.1", user_id="oUpF8uMuAJO_M2pxb1Q9zNjWeS6o",
                                 out_trade_no=out_trade_no, sign_type="HMAC-SHA256")
    # The answer is signed as the request was: HMAC-SHA256.
    fields = {k: v for k, v in answer.items() if k != "sign"}
    assert answer["sign"] == calculate_signature_hmac(fields, API_KEY)
    wrong = V2Pay(appid=APPID, api_key="0" * 32, mch_id=MCH_ID)
    wrong.API_BASE_URL = sim["base"] + "/"
    with pytest.raises(WeChatPayException) as refused:
        wrong.order.query(out_trade_no=out_trade_no)
    assert refused.value.return_code == "FAIL" and refused.value.return_msg == "签名错误"
    assert calculate_signature(fields, API_KEY) != answer["sign"]


def test_v2_close_rule_micropay_and_faults(sim):
    client = v2(sim)
    out_trade_no = no()
    client.order.create(trade_type="APP", body="close", total_fee=9, notify_url="http://127.0.0.1:9/n",
                        client_ip="127.0.0.1", out_trade_no=out_trade_no)
    with pytest.raises(WeChatPayException) as early:
        client.order.close(out_trade_no)
    assert early.value.errcode == "INVALID_REQUEST"
    sim_api(sim, "/sim/wechat/clock", {"advance_seconds": 301})
    v2_checked(client, client.order.close(out_trade_no))
    assert v2_checked(client, client.order.query(out_trade_no=out_trade_no))["trade_state"] == "CLOSED"
    # Paid after close: the payer's money arrives anyway.
    sim_api(sim, "/sim/wechat/pay", {"out_trade_no": out_trade_no, "late": True})
    assert v2_checked(client, client.order.query(out_trade_no=out_trade_no))["trade_state"] == "SUCCESS"

    sim_api(sim, "/sim/wechat/codes", {"auth_code": "134567890123456789", "outcome": "USERPAYING"})
    mp = no()
    with pytest.raises(WeChatPayException) as waiting:
        client.micropay.create(body="scan", total_fee=20, auth_code="134567890123456789", client_ip="127.0.0.1",
                               out_trade_no=mp)
    assert waiting.value.errcode == "USERPAYING"
    assert v2_checked(client, client.micropay.query(out_trade_no=mp))["trade_state"] == "USERPAYING"
    sim_api(sim, "/sim/wechat/pay", {"out_trade_no": mp})
    assert v2_checked(client, client.micropay.query(out_trade_no=mp))["trade_state"] == "SUCCESS"

    # A payment code order can be reversed: paid, its money goes back and it reads REVOKED.
    reversed_ = v2_checked(client, client.order.reverse(out_trade_no=mp))
    assert reversed_["recall"] == "N"
    assert v2_checked(client, client.micropay.query(out_trade_no=mp))["trade_state"] == "REVOKED"
    sim_api(sim, "/sim/wechat/faults", {"path": "/pay/orderquery", "kind": "systemerror", "count": 1})
    with pytest.raises(WeChatPayException) as busy:
        client.order.query(out_trade_no=mp)
    assert busy.value.errcode == "SYSTEMERROR"
    v2_checked(client, client.order.query(out_trade_no=mp))


def test_v2_notification_retries_until_success(sim):
    client, receiver = v2(sim), sim["receiver"]
    receiver.fail_first["/v2/retry"] = 2
    out_trade_no = no()
    client.order.create(trade_type="NATIVE", body="retry", total_fee=3, notify_url=receiver.url + "/v2/retry",
                        client_ip="127.0.0.1", out_trade_no=out_trade_no, product_id="p")
    sim_api(sim, "/sim/wechat/pay", {"out_trade_no": out_trade_no})
    for _ in range(3):
        _, _, body = receiver.next("/v2/retry")
        assert client.parse_payment_result(body)["out_trade_no"] == out_trade_no
    deadline = time.time() + 5
    while time.time() < deadline:
        mine = [n for n in sim_api(sim, "/sim/wechat/notifications")["notifications"]
                if n["out_trade_no"] == out_trade_no]
        if mine and mine[0]["delivered"]:
            break
        time.sleep(0.05)
    assert mine[0]["attempts"] == 3 and mine[0]["delivered"]


def test_v3_native_pay_query_close_refund(sim, merchant_key):
    receiver = sim["receiver"]
    client = v3(sim, merchant_key, notify_url=receiver.url + "/v3/pay")
    out_trade_no = no()
    code, message = client.pay(description="v3 sim", out_trade_no=out_trade_no, amount={"total": 2000})
    assert code == 200, message
    assert json.loads(message)["code_url"].startswith("weixin://")
    code, message = client.query(out_trade_no=out_trade_no)
    assert code == 200 and json.loads(message)["trade_state"] == "NOTPAY"

    sim_api(sim, "/sim/wechat/pay", {"out_trade_no": out_trade_no})
    _, headers, body = receiver.next("/v3/pay")
    notice = client.callback(headers, body)  # verifies the platform signature, decrypts the resource
    assert notice is not None, "wechatpayv3 refused the notification"
    assert notice["event_type"] == "TRANSACTION.SUCCESS"
    resource = notice["resource"]
    assert resource["out_trade_no"] == out_trade_no and resource["amount"]["total"] == 2000

    code, message = client.query(transaction_id=resource["transaction_id"])
    assert code == 200 and json.loads(message)["trade_state"] == "SUCCESS"

    refund_no = no()
    code, message = client.refund(out_refund_no=refund_no, amount={"refund": 500, "total": 2000, "currency": "CNY"},
                                  out_trade_no=out_trade_no, notify_url=receiver.url + "/v3/refund")
    assert code == 200, message
    assert json.loads(message)["status"] == "SUCCESS"
    _, headers, body = receiver.next("/v3/refund")
    refunded = client.callback(headers, body)
    assert refunded["event_type"] == "REFUND.SUCCESS" and refunded["resource"]["out_refund_no"] == refund_no
    code, message = client.query_refund(out_refund_no=refund_no)
    assert code == 200 and json.loads(message)["amount"]["refund"] == 500

    code, message = client.refund(out_refund_no=no(), amount={"refund": 1501, "total": 2000, "currency": "CNY"},
                                  out_trade_no=out_trade_no)
    assert code == 400 and json.loads(message)["code"] == "INVALID_REQUEST"

    unpaid = no()
    assert client.pay(description="close me", out_trade_no=unpaid, amount={"total": 1})[0] == 200
    sim_api(sim, "/sim/wechat/clock", {"advance_seconds": 301})
    code, message = client.close(out_trade_no=unpaid)
    assert code == 204, message
    assert json.loads(client.query(out_trade_no=unpaid)[1])["trade_state"] == "CLOSED"


def test_v3_refuses_bad_signatures_and_sdk_refuses_forged_answers(sim, merchant_key):
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()).decode()
    forger = v3(sim, (other, merchant_key[1]))
    code, message = forger.query(out_trade_no="whatever")
    assert code == 401 and json.loads(message)["code"] == "SIGN_ERROR"

    # An SDK that trusts another platform key refuses the simulator's (genuine) answers: it does verify.
    wrong_pub = rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    sceptic = v3(dict(sim, public_key_pem=wrong_pub), merchant_key, notify_url="http://127.0.0.1:9/n")
    with pytest.raises(Exception, match="failed to verify the signature"):
        sceptic.pay(description="x", out_trade_no=no(), amount={"total": 1})

    # A SYSTEMERROR fault answers 500 and changes nothing.
    client = v3(sim, merchant_key, notify_url="http://127.0.0.1:9/n")
    sim_api(sim, "/sim/wechat/faults", {"path": "/v3/pay/transactions/native", "kind": "systemerror"})
    out_trade_no = no()
    code, _ = client.pay(description="x", out_trade_no=out_trade_no, amount={"total": 1})
    assert code == 500
    assert client.query(out_trade_no=out_trade_no)[0] == 404



def test_v3_profit_sharing(sim, merchant_key):
    client = v3(sim, merchant_key, notify_url="http://127.0.0.1:9/n")
    out_trade_no = no()
    code, message = client.pay(description="share", out_trade_no=out_trade_no, amount={"total": 1000},
                               settle_info={"profit_sharing": True})
    assert code == 200, message
    tx = sim_api(sim, "/sim/wechat/pay", {"out_trade_no": out_trade_no})["transaction_id"]
    receivers = [{"type": "MERCHANT_ID", "account": "1900000110", "amount": 300, "description": "partner"}]

    code, message = client.profitsharing_order(transaction_id=tx, out_order_no="P" + no(), receivers=receivers,
                                               unfreeze_unsplit=False)
    assert code == 400 and json.loads(message)["code"] == "RECEIVER_INVALID", "receivers are added first"
    code, message = client.profitsharing_add_receiver(account_type="MERCHANT_ID", account="1900000110",
                                                      relation_type="PARTNER")
    assert code == 200, message

    share_no = "P" + no()
    code, message = client.profitsharing_order(transaction_id=tx, out_order_no=share_no, receivers=receivers,
                                               unfreeze_unsplit=False)
    assert code == 200, message
    over = [dict(receivers[0], amount=1)]
    code, message = client.profitsharing_order(transaction_id=tx, out_order_no="P" + no(), receivers=over,
                                               unfreeze_unsplit=False)
    assert code == 400, "30 % of 1000 is shared already"
    code, message = client.profitsharing_order_query(transaction_id=tx, out_order_no=share_no)
    assert code == 200 and json.loads(message)["receivers"][0]["amount"] == 300

    return_no = "R" + no()
    code, message = client.profitsharing_return(out_return_no=return_no, return_mchid="1900000110", amount=100,
                                                description="back", out_order_no=share_no)
    assert code == 200 and json.loads(message)["result"] == "SUCCESS", message
    code, message = client.profitsharing_return_query(out_order_no=share_no, out_return_no=return_no)
    assert code == 200 and json.loads(message)["amount"] == 100

    code, message = client.profitsharing_amount_query(transaction_id=tx)
    assert code == 200 and json.loads(message)["unsplit_amount"] == 700
    code, message = client.profitsharing_unfreeze(transaction_id=tx, out_order_no="U" + no(), description="done")
    assert code == 200, message
    assert json.loads(client.profitsharing_amount_query(transaction_id=tx)[1])["unsplit_amount"] == 0


def test_daily_bills(sim, merchant_key):
    v2c, v3c = v2(sim), v3(sim, merchant_key, notify_url="http://127.0.0.1:9/n")
    out_trade_no = no()
    v2c.order.create(trade_type="NATIVE", body="bill", total_fee=1234, notify_url="http://127.0.0.1:9/n",
                     client_ip="127.0.0.1", out_trade_no=out_trade_no, product_id="p")
    sim_api(sim, "/sim/wechat/pay", {"out_trade_no": out_trade_no})
    now = sim_api(sim, "/sim/config")["wechat"]["now"]
    day = datetime.fromtimestamp(now, timezone(timedelta(hours=8)))

    text = v2c.tools.download_bill(day.strftime("%Y%m%d"))
    assert isinstance(text, str) and text.startswith("交易时间,公众账号ID,商户号"), text
    row = next(line for line in text.splitlines() if f"`{out_trade_no}" in line)
    assert "`SUCCESS" in row and "`12.34" in row and "`0.07" in row  # 0.6 % of 12.34, half up
    with pytest.raises(WeChatPayException):
        v2c.tools.download_bill("20000101")

    code, message = v3c.trade_bill(bill_date=day.strftime("%Y-%m-%d"))  # the SDK asks for GZIP
    assert code == 200, message
    info = json.loads(message)
    code, content = v3c.download_bill(info["download_url"])
    assert code == 200
    raw = gzip.decompress(content)
    assert info["hash_type"] == "SHA1" and hashlib.sha1(raw).hexdigest() == info["hash_value"]
    assert f"`{out_trade_no}" in raw.decode()


def _cert(subject, issuer_name, issuer_key, key, ca=False, san_ip=None):
    now = datetime.now(timezone.utc)
    builder = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
               .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer_name)]))
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - timedelta(days=1)).not_valid_after(now + timedelta(days=30))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if san_ip:
        builder = builder.add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(san_ip))]),
                                        critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


def _pem(obj):
    if isinstance(obj, x509.Certificate):
        return obj.public_bytes(serialization.Encoding.PEM)
    return obj.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def test_v2_secapi_needs_the_merchant_client_certificate(tmp_path, monkeypatch, merchant_key):
    binary = os.environ.get("PAYGATE_BIN")
    if not binary:
        pytest.skip("PAYGATE_BIN is not set")
    new_key = lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048)  # noqa: E731
    ca_key, server_key, client_key, rogue_key = new_key(), new_key(), new_key(), new_key()
    ca = _cert("sim ca", "sim ca", ca_key, ca_key, ca=True)
    files = {
        "ca.pem": _pem(ca),
        "server.pem": _pem(_cert("127.0.0.1", "sim ca", ca_key, server_key, san_ip="127.0.0.1")),
        "server.key": _pem(server_key),
        "client.pem": _pem(_cert(MCH_ID, "sim ca", ca_key, client_key)),
        "client.key": _pem(client_key),
        "rogue.pem": _pem(_cert(MCH_ID, "rogue", rogue_key, rogue_key)),
        "rogue.key": _pem(rogue_key),
    }
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    config = {"merchants": [{"mch_id": MCH_ID, "appid": APPID, "api_key": API_KEY}]}
    (tmp_path / "sim.json").write_text(json.dumps(config))
    proc = subprocess.Popen([binary, "sim", "wechat", "--listen", "127.0.0.1:0", "--config", str(tmp_path / "sim.json"),
                             "--tls-cert", str(tmp_path / "server.pem"), "--tls-key", str(tmp_path / "server.key"),
                             "--client-ca", str(tmp_path / "ca.pem")],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        base = "https://" + json.loads(proc.stdout.readline())["listen"]
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(tmp_path / "ca.pem"))  # trust the simulator's server cert

        def client(cert=None):
            c = V2Pay(appid=APPID, api_key=API_KEY, mch_id=MCH_ID,
                      mch_cert=cert and str(tmp_path / f"{cert}.pem"), mch_key=cert and str(tmp_path / f"{cert}.key"))
            c.API_BASE_URL = base + "/"
            return c

        out_trade_no = no()
        v2_checked(client(), client().order.create(trade_type="APP", body="tls", total_fee=100,
                                                   notify_url="http://127.0.0.1:9/n", client_ip="127.0.0.1",
                                                   out_trade_no=out_trade_no))
        requests.post(base + "/sim/wechat/pay", json={"out_trade_no": out_trade_no}, timeout=10).raise_for_status()
        with pytest.raises(WeChatPayException) as no_cert:
            client().refund.apply(total_fee=100, refund_fee=1, out_refund_no=no(), out_trade_no=out_trade_no)
        assert no_cert.value.return_code == "FAIL"
        with pytest.raises(Exception):
            client("rogue").refund.apply(total_fee=100, refund_fee=1, out_refund_no=no(), out_trade_no=out_trade_no)
        ok = client("client")
        refund = v2_checked(ok, ok.refund.apply(total_fee=100, refund_fee=1, out_refund_no=no(),
                                                out_trade_no=out_trade_no))
        assert refund["refund_fee"] == "1"
    finally:
        proc.terminate()
        proc.wait(timeout=10)
