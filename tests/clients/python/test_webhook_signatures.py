"""Webhook signatures verified by an independent implementation (Python `cryptography` and
`hmac`), against a running paygate whose in-process worker delivers to a receiver here.
This file is also the runnable example docs/webhooks.md points to: copy the two verify_*
functions into a receiver.
"""
import base64
import hashlib
import hmac
import json
import os
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, HTTPServer

import pingpp
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding

TOLERANCE_SECONDS = 300


def verify_paygate_signature(header, body, secret, now=None):
    """`Paygate-Signature: t=UNIX,v1=HEX`, HMAC-SHA256(secret, f"{t}.{body}"); refuse stale."""
    parts = dict(p.split("=", 1) for p in header.split(","))
    t = int(parts["t"])
    if abs((now if now is not None else time.time()) - t) > TOLERANCE_SECONDS:
        return False
    expected = hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, parts["v1"])


def verify_pingpp_signature(header, body, public_key_pem):
    """`x-pingplusplus-signature`: base64 RSA-SHA256 (PKCS#1 v1.5) over the raw body."""
    key = serialization.load_pem_public_key(public_key_pem.encode())
    try:
        key.verify(base64.b64decode(header), body, padding.PKCS1v15(), hashes.SHA256())
        return True
    except InvalidSignature:
        return False


def api(method, path, body=None):
    req = urllib.request.Request(os.environ["PAYGATE_BASE"] + path, method=method,
                                 data=json.dumps(body).encode() if body is not None else None,
                                 headers={"authorization": "Bearer " + os.environ["PAYGATE_KEY"],
                                          "content-type": "application/json"})
    with urllib.request.urlopen(req) as resp:
        return json.load(resp)


def test_both_signatures_verify_independently():
    received = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers["content-length"]))
            received.append((dict(self.headers), body))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        endpoint = api("POST", "/v1/webhook_endpoints",
                       {"url": f"http://127.0.0.1:{server.server_port}/hooks", "events": ["charge.succeeded"]})
        pingpp.api_base, pingpp.api_key = os.environ["PAYGATE_BASE"], os.environ["PAYGATE_KEY"]
        pingpp.private_key = pingpp.private_key_path = None
        app = os.environ["PAYGATE_APP"]
        order = pingpp.Order.create(app=app, merchant_order_no=f"wh{int(time.time() * 1000)}", amount=100,
                                    currency="cny", subject="s", body="b", client_ip="127.0.0.1")
        charge = pingpp.Order.pay(order.id, channel="alipay_qr").charges.data[0]
        api("POST", f"/v1/sandbox/charges/{charge.id}/pay", {"result": "success"})
        deadline = time.time() + 20
        while not received and time.time() < deadline:
            time.sleep(0.05)
        assert received, "the worker delivered the event"
        headers, body = received[0]
        headers = {k.lower(): v for k, v in headers.items()}
        event = json.loads(body)
        assert event["type"] == "charge.succeeded" and event["data"]["object"]["id"] == charge.id

        public_key = api("GET", "/v1/webhook_public_key")["pem"]
        assert verify_pingpp_signature(headers["x-pingplusplus-signature"], body, public_key)
        assert verify_paygate_signature(headers["paygate-signature"], body, endpoint["secret"])

        tampered = body.replace(b'"amount":100', b'"amount":1')
        assert tampered != body
        assert not verify_pingpp_signature(headers["x-pingplusplus-signature"], tampered, public_key)
        assert not verify_paygate_signature(headers["paygate-signature"], tampered, endpoint["secret"])
        assert not verify_paygate_signature(headers["paygate-signature"], body, "whsec_wrong")
        t = int(headers["paygate-signature"].split(",")[0][2:])
        assert not verify_paygate_signature(headers["paygate-signature"], body, endpoint["secret"], now=t + 301)
    finally:
        server.shutdown()
