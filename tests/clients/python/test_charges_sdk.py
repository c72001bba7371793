"""The official PyPI `pingpp` 2.7.2 SDK's Charge API, unmodified, driving a running paygate:
create → sandbox pay → retrieve → partial refund → list with each filter → reverse.

Environment (set by tests/clients/run): PAYGATE_BASE, PAYGATE_APP, PAYGATE_KEY, PAYGATE_BIN,
PAYGATE_DATABASE.
"""
import time

import pingpp
import pytest

from pingpp_helpers import ENV, RUN, sandbox_pay, sdk  # noqa: F401 (sdk is an autouse fixture)


def new_charge(no, channel, **extra):
    params = dict(order_no=RUN + no, app=dict(id=ENV["PAYGATE_APP"]), channel=channel, amount=100,
                  client_ip="127.0.0.1", currency="cny", subject="Your Subject", body="Your Body")
    params.update(extra)
    return pingpp.Charge.create(**params)


def test_charge_story():
    app = ENV["PAYGATE_APP"]
    since = int(time.time()) - 1
    charge = new_charge("c1", "wx_pub_qr", extra={"product_id": "p1"}, metadata={"k": "v"}, description="d")
    assert charge.object == "charge" and charge.order_no == RUN + "c1" and charge.app == app
    assert charge.paid is False and charge.reversed is False and charge.amount == 100
    assert charge.credential["object"] == "credential" and "/sandbox/charges/ch_" in charge.credential["wx_pub_qr"]
    assert charge.extra["product_id"] == "p1" and charge.metadata["k"] == "v"

    with pytest.raises(pingpp.error.APIError) as dup:  # the SDK's class for a 409
        new_charge("c1", "alipay")
    assert dup.value.http_status == 409 and dup.value.json_body["error"]["param"] == "order_no"

    sandbox_pay(charge.id)
    paid = pingpp.Charge.retrieve(charge.id)
    assert paid.paid is True and paid.time_paid and paid.transaction_no
    assert paid.refunds.object == "list"

    refund = pingpp.Charge.refund(charge.id, amount=30, description="partial")
    assert refund.object == "refund" and refund.amount == 30 and refund.status == "succeeded"
    assert pingpp.Charge.retrieve_refund(charge.id, refund.id).amount == 30
    assert len(pingpp.Charge.list_refunds(charge.id).data) == 1
    assert pingpp.Charge.retrieve(charge.id).amount_refunded == 30

    unpaid = new_charge("c2", "alipay_qr")
    full = new_charge("c3", "alipay_qr")
    sandbox_pay(full.id)
    pingpp.Charge.refund(full.id)

    # The database is shared with the other suites: only these charges are compared.
    mine = [charge.id, unpaid.id, full.id]

    def listed(**params):
        page = pingpp.Charge.list(app=dict(id=app), limit=100, **params)
        return [c.id for c in page.data if c.id in mine]

    assert listed() == [full.id, unpaid.id, charge.id]
    assert listed(channel="wx_pub_qr") == [charge.id]
    assert listed(paid=True) == [full.id, charge.id]
    assert listed(paid=False) == [unpaid.id]
    assert listed(refunded=True) == [full.id]
    assert listed(refunded=False) == [unpaid.id, charge.id]
    assert listed(reversed=False) == [full.id, unpaid.id, charge.id]
    assert listed(created=dict(gte=since)) == [full.id, unpaid.id, charge.id]
    assert listed(created=dict(lt=since)) == []
    assert listed(created=dict(gt=since - 1, lte=int(time.time()) + 1)) == [full.id, unpaid.id, charge.id]
    first = pingpp.Charge.list(app=dict(id=app), limit=1)
    assert len(first.data) == 1 and first.has_more is True
    second = pingpp.Charge.list(app=dict(id=app), limit=1, starting_after=first.data[0].id)
    assert second.data[0].id != first.data[0].id
    back = pingpp.Charge.list(app=dict(id=app), limit=1, ending_before=second.data[0].id)
    assert back.data[0].id == first.data[0].id
    with pytest.raises(pingpp.error.InvalidRequestError):
        pingpp.Charge.list(limit=1)  # the SDK itself insists on app[id]

    closed = pingpp.Charge.reverse(unpaid.id)
    assert closed.reversed is True and closed.paid is False
    reversed_ = pingpp.Charge.reverse(charge.id)
    assert reversed_.reversed is True and reversed_.amount_refunded == 100
    assert listed(reversed=True) == [unpaid.id, charge.id]


def test_charge_errors_name_the_field():
    with pytest.raises(pingpp.error.InvalidRequestError) as bad:
        new_charge("e1", "wx", amount=1.5)
    assert bad.value.http_status == 400 and bad.value.param == "amount"
    with pytest.raises(pingpp.error.InvalidRequestError) as bad:
        new_charge("e2", "no_such_channel")
    assert bad.value.param == "channel"
