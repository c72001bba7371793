#!/usr/bin/env python3
"""The console benchmark's timing (scripts/bench, SCENARIO=console): signs console users in to a running paygate
over the kept lists data (bench/lists_*.sql), then requests each console page N times one after another and N
times from each of 4 concurrent clients (each its own session and keep-alive connection), and prints one JSON line
per page and run: client p50/p99 and, from paygate's JSON request log ("answered", latency_ms, matched by the
x-request-id each request sends), the server's own p50/p99.

  bench-console.py BASE APP_ID EMAIL PASSWORD_FILE T0 N_ORDERS LOG N CLIENTS BACKEND
"""
import datetime
import http.client
import json
import re
import sys
import threading
import time
import urllib.parse

BASE, APP, EMAIL, PASSWORD_FILE, T0, N_ORDERS, LOG, N, CLIENTS, BACKEND = sys.argv[1:11]
T0, N_ORDERS, N, CLIENTS = int(T0), int(N_ORDERS), int(N), int(CLIENTS)
HOST = urllib.parse.urlsplit(BASE).netloc
PASSWORD = open(PASSWORD_FILE).readline().rstrip("\r\n")
YEAR = 31536000
BEIJING = datetime.timezone(datetime.timedelta(hours=8))


class Client:
    """One signed-in browser: a session cookie and one keep-alive connection (made again when paygate closes it)."""

    def __init__(self):
        self.cookies = {}
        self.conn = None

    def request(self, method, path, body=None, headers=None, rid=None, first_lines=None):
        """(status, headers, body); with `first_lines` the body is read only that far (a streamed export's first
        page) and the connection dropped."""
        h = {"accept-language": "en"}
        if self.cookies:
            h["cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        if rid:
            h["x-request-id"] = rid
        h.update(headers or {})
        for attempt in (0, 1):
            if self.conn is None:
                self.conn = http.client.HTTPConnection(HOST, timeout=600)
            try:
                self.conn.request(method, path, body=body, headers=h)
                resp = self.conn.getresponse()
                break
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                self.conn.close()
                self.conn = None
                if attempt:
                    raise
        for name, value in resp.getheaders():
            if name.lower() == "set-cookie":
                pair, _, attrs = value.partition(";")
                k, _, v = pair.partition("=")
                if "Max-Age=0" in attrs:
                    self.cookies.pop(k.strip(), None)
                else:
                    self.cookies[k.strip()] = v.strip()
        if first_lines is None:
            data = resp.read()
        else:
            data = b""
            while data.count(b"\n") < first_lines:
                chunk = resp.read1(65536)
                if not chunk:
                    break
                data += chunk
            self.conn.close()
            self.conn = None
        return resp.status, dict((k.lower(), v) for k, v in resp.getheaders()), data.decode("utf-8", "replace")

    def sign_in(self):
        _, _, page = self.request("GET", "/console/login")
        csrf = re.search(r'name="csrf" value="([^"]*)"', page).group(1)
        form = urllib.parse.urlencode({"csrf": csrf, "app": APP, "email": EMAIL, "password": PASSWORD})
        status, headers, page = self.request(
            "POST", "/console/login", form,
            {"content-type": "application/x-www-form-urlencoded", "sec-fetch-site": "same-origin"})
        if status != 303 or headers.get("location") != "/console/test":
            sys.exit(f"console sign-in failed: {status} {headers.get('location')} {page[:2000]}")
        return self


def order_index_paid(i):
    """The generator's rule (bench/lists_*.sql): row i is paid when its hash's c = r % 1000 < 600."""
    r = (i * 2654435761) % 4294967296
    return r % 1000 < 600


def day(t):
    return datetime.datetime.fromtimestamp(t, BEIJING).strftime("%Y-%m-%d")


mid = N_ORDERS // 2
while not order_index_paid(mid):
    mid += 1
order_id = "9" + str(mid).rjust(18, "0")
now = T0 + YEAR
# (name, path, what the answer must be: a status, and for a search the payment it lands on)
pages = [
    ("overview", "/console/test", 200),
    ("payments", "/console/test/payments", 200),
    ("status_paid", "/console/test/payments?status=paid", 200),
    ("status_unpaid", "/console/test/payments?status=unpaid", 200),
    ("status_canceled", "/console/test/payments?status=canceled", 200),
    ("refund_yes", "/console/test/payments?refund=yes", 200),
    ("refund_no", "/console/test/payments?refund=no", 200),
    ("channel_wx_pub", "/console/test/payments?channel=wx_pub", 200),
    ("channel_alipay", "/console/test/payments?channel=alipay_pc_direct", 200),
    ("channel_refund_yes", "/console/test/payments?channel=wx_pub&refund=yes", 200),
    ("range_last_30_days", f"/console/test/payments?from={day(now - 30 * 86400)}&to={day(now)}", 200),
    ("range_one_day", f"/console/test/payments?from={day(T0 + YEAR // 2)}&to={day(T0 + YEAR // 2)}", 200),
    ("range_one_day_paid",
     f"/console/test/payments?status=paid&from={day(T0 + YEAR // 2)}&to={day(T0 + YEAR // 2)}", 200),
    ("uid", "/console/test/payments?uid=payer_1", 200),
    ("merchandise", "/console/test/payments?merchandise=item_42", 200),
    ("merchandise_paid", "/console/test/payments?merchandise=item_42&status=paid", 200),
    ("cursor_middle", f"/console/test/payments?after={order_id}", 200),
    ("search_order_id", f"/console/test/payments?q={order_id}", 303),
    ("search_merchant_order_no", f"/console/test/payments?q=m{str(mid).rjust(12, '0')}", 303),
    ("search_charge_id", f"/console/test/payments?q=ch_{str(mid).rjust(24, '0')}", 303),
    ("search_transaction_no", f"/console/test/payments?q=ct{str(mid).rjust(28, '0')}", 303),
    ("search_channel_order_no", f"/console/test/payments?q=td{str(mid).rjust(30, '0')}", 303),
    ("search_hserve_transaction_no", f"/console/test/payments?q=hx{str(mid).rjust(30, '0')}", 303),
    # The data has no cashier payments: a number nothing has walks every lookup, the cashier's out_trade_no too.
    ("search_no_match", "/console/test/payments?q=no-such-number", 200),
    ("payment_detail", f"/console/test/payments/{order_id}", 200),
    ("csv_first_page", "/console/test/payments.csv", 200),
    ("csv_merchandise_whole", "/console/test/payments.csv?merchandise=item_42&status=paid", 200),
]


def check(name, path, want, status, headers, body):
    if status != want:
        sys.exit(f"{name}: {path} answered {status}, not {want}: {body[:2000]}")
    if want == 303 and not headers.get("location", "").endswith(f"/payments/{order_id}"):
        sys.exit(f"{name}: {path} found {headers.get('location')}, not order {order_id}")
    if name == "merchandise" and "item_42" not in body:
        sys.exit(f"{name}: the page does not show the merchandise filter (a paygate without it?)")


def get(client, name, path, rid):
    first = 101 if name == "csv_first_page" else None  # the heading and the first list call's 100 rows
    t = time.perf_counter()
    status, headers, body = client.request("GET", path, rid=rid, first_lines=first)
    return (time.perf_counter() - t) * 1000, status, headers, body


def pct(values, p):
    values = sorted(values)
    return round(values[min(int(len(values) * p), len(values) - 1)], 2) if values else None


def timed_requests(client, name, path, want, tag):
    """N checked requests of one page from one client: [(request id, client ms)]."""
    timed = []
    for i in range(N):
        rid = f"cb.{name}.{tag}.{i}"
        ms, status, headers, body = get(client, name, path, rid)
        check(name, path, want, status, headers, body)
        timed.append((rid, ms))
    return timed


runs = []  # (page, run, [(request id, client ms)])
solo = Client().sign_in()
crowd = [Client().sign_in() for _ in range(CLIENTS)]
for name, path, want in pages:
    check(name, path, want, *get(solo, name, path, None)[1:])  # once, checked; also warms the caches
    runs.append((name, "sequential", timed_requests(solo, name, path, want, "seq")))
    timed, lock = [], threading.Lock()

    def one_client(c, client):
        mine = timed_requests(client, name, path, want, f"c{CLIENTS}.{c}")
        with lock:
            timed.extend(mine)

    threads = [threading.Thread(target=one_client, args=(c, cl)) for c, cl in enumerate(crowd)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    runs.append((name, f"{CLIENTS}_clients", timed))

time.sleep(0.5)  # the last lines reach the log
server = {}
for line in open(LOG, encoding="utf-8", errors="replace"):
    try:
        r = json.loads(line)
    except ValueError:
        continue
    if r.get("message") == "answered":
        rid = (r.get("span") or {}).get("id") or r.get("id")
        if rid and rid.startswith("cb."):
            server[rid] = float(r["latency_ms"])
for name, run, timed in runs:
    srv = [server[rid] for rid, _ in timed if rid in server]
    print(json.dumps({"name": f"{BACKEND}:{name}", "run": run, "requests": len(timed),
                      "p50_ms": pct([ms for _, ms in timed], 0.5), "p99_ms": pct([ms for _, ms in timed], 0.99),
                      "server_p50_ms": pct(srv, 0.5), "server_p99_ms": pct(srv, 0.99), "server_n": len(srv)}))
