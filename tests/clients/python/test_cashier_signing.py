"""The cashier and SaaS-query signature schemes of docs/cashier.md, implemented independently in
Python (stdlib only), against a running paygate. Environment (set by tests/clients/run):
PAYGATE_BASE, PAYGATE_KEY, PAYGATE_CASHIER_{ID,SECRET,TOKEN}, PAYGATE_SAAS_{ID,KEY}."""
import base64
import hashlib
import hmac
import json
import os
import time
import urllib.error
import urllib.request

BASE = os.environ["PAYGATE_BASE"]
RUN = str(int(time.time() * 1000))


def canonical(fields):
    return "&".join(
        f"{k}={v if isinstance(v, str) else json.dumps(v, separators=(',', ':'), ensure_ascii=False)}"
        for k, v in sorted(fields.items())
        if k != "sign" and v not in ("", None)
    )


def md5(text):
    return hashlib.md5(text.encode()).hexdigest()


def post(path, body, key=None):
    headers = {"content-type": "application/json"}
    if key:
        headers["authorization"] = "Basic " + base64.b64encode(f"{key}:".encode()).decode()
    req = urllib.request.Request(BASE + path, data=json.dumps(body).encode(), headers=headers, method="POST")
    try:
        with urllib.request.urlopen(req) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def cashier(op, biz, sign_type="MD5", nonce=""):
    secret = os.environ["PAYGATE_CASHIER_SECRET"]
    env = {"open_app_id": os.environ["PAYGATE_CASHIER_ID"], "timestamp": int(time.time()), "sign_type": sign_type,
           "token": os.environ["PAYGATE_CASHIER_TOKEN"], "biz_content": json.dumps(biz), "nonce_str": nonce}
    if sign_type == "MD5":
        env["sign"] = md5(f"{canonical(env)}&key={secret}")
    else:
        env["sign"] = hmac.new(secret.encode(), canonical(env).encode(), hashlib.sha256).hexdigest()
    status, raw = post(f"/api/v2/cashier/{op}", env)
    signed = {"result": raw["result"]}
    expected = md5(f"{canonical(signed)}&key={secret}") if sign_type == "MD5" else hmac.new(secret.encode(), canonical(signed).encode(), hashlib.sha256).hexdigest()
    # Refusals before the caller is verified (bad signature, replay, …) are not signed.
    assert raw["sign"] == expected or (status == 401 and raw["sign"] == ""), raw
    return status, json.loads(raw["result"])


def test_member_wallet_payment_signed_both_ways():
    key = os.environ["PAYGATE_KEY"]
    status, member = post("/v1/members", {"member_no": f"py{RUN}", "phone": "18826490000", "name": "Janus"}, key)
    assert status == 200, member
    status, member = post(f"/v1/members/{member['id']}/topups", {"amount": 100}, key)
    assert member["balance"] == 100
    status, paid = cashier("pay", {"out_trade_no": f"py-{RUN}", "total_fee": 100, "auth_code": member["pay_code"], "attach": "A1"})
    assert status == 200 and paid["succeed"] and paid["data"]["status"] == "PAYED_SUCC", paid
    status, q = cashier("query", {"pay_no": paid["data"]["pay_no"]}, sign_type="HMAC-SHA256")
    assert status == 200, q
    d = q["data"]
    assert (d["payment_type"], d["fee"], d["received_fee"], d["member_name"], d["attach"]) == ("BALANCE", 100, 100, "Janus", "A1")
    # The same envelope again is a replay; a nonce makes a legitimate retry distinct.
    status, _ = cashier("query", {"pay_no": paid["data"]["pay_no"]}, nonce=f"n-{RUN}")
    assert status == 200
    status, again = cashier("query", {"pay_no": paid["data"]["pay_no"]}, nonce=f"n-{RUN}")
    assert status == 401 and "replay" in again["msg"], again


def test_saas_query_uppercase_md5():
    status, paid = cashier("pay", {"out_trade_no": f"wx-{RUN}", "total_fee": 1, "auth_code": "134567890123456789"})
    assert status == 200, paid
    key = os.environ["PAYGATE_SAAS_KEY"]
    body = {"accessid": os.environ["PAYGATE_SAAS_ID"], "trade_no": paid["data"]["pay_no"]}
    body["sign"] = md5(f"{canonical(body)}&key={key}").upper()
    status, answer = post("/api/v1/pay/wx/query", body)
    assert status == 200, answer
    assert (answer["total_amount"], answer["trade_status"], answer["return_code"]) == ("0.01", "1", 10000)
    fields = {k: v for k, v in answer.items() if k != "sign"}
    assert answer["sign"] == md5(f"{canonical(fields)}&key={key}").upper()
    body["trade_no"] = "600000000000000000"
    status, refused = post("/api/v1/pay/wx/query", body)
    assert status == 401 and refused["param"] == "sign", refused
