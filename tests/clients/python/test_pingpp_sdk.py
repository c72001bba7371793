"""The official PyPI `pingpp` 2.7.2 SDK, unmodified, driving a running paygate.

Environment (set by tests/clients/run): PAYGATE_BASE, PAYGATE_APP, PAYGATE_KEY,
PAYGATE_SIGNED_APP, PAYGATE_SIGNED_KEY, PAYGATE_PRIVATE_KEY_FILE, PAYGATE_BIN, PAYGATE_DATABASE.
"""
import time

import pingpp
import pytest

from pingpp_helpers import ENV, RUN, sandbox_pay, sdk  # noqa: F401 (sdk is an autouse fixture)


def new_order(app, no, **extra):
    params = dict(app=app, merchant_order_no=RUN + no, amount=1000, client_ip="127.0.0.1", currency="cny",
                  subject="Your Subject", body="Your Body", uid="py_user", receipt_app=app, service_app=app)
    params.update(extra)
    return pingpp.Order.create(**params)


def test_order_story():
    app = ENV["PAYGATE_APP"]
    before = int(time.time()) - 1
    order = new_order(app, "p1", coupon_amount=100)
    assert order.object == "order" and order.actual_amount == 900 and order.status == "created"
    assert pingpp.Order.retrieve(order.id).merchant_order_no == order.merchant_order_no

    paying = pingpp.Order.pay(order.id, channel="wx_pub_qr", charge_amount=900, extra={"product_id": "p"})
    charge = paying.charges.data[0]
    assert charge.id.startswith("ch_")
    assert pingpp.Order.retrieve_charge(order.id, charge.id).id == charge.id
    assert len(pingpp.Order.list_charges(order.id).data) == 1
    sandbox_pay(charge.id)
    paid = pingpp.Order.retrieve(order.id)
    assert paid.status == "paid" and paid.amount_paid == 900 and paid.time_paid

    partial = pingpp.Order.refund(order.id, amount=400, description="partial")
    assert partial.data[0].amount == 400 and partial.data[0].status == "succeeded"
    full = pingpp.Order.refund(order.id, description="rest")
    assert full.data[0].amount == 500
    assert len(pingpp.Order.list_refunds(order.id).data) == 2
    assert pingpp.Order.retrieve_refund(order.id, full.data[0].id).amount == 500
    done = pingpp.Order.retrieve(order.id)
    assert done.amount_refunded == 900 and done.status == "refunded" and done.refunded is True

    unpaid = new_order(app, "p2", uid="py_other")
    assert pingpp.Order.cancel(unpaid.id).status == "canceled"

    def ids(**params):
        return [o.id for o in pingpp.Order.list(app=app, **params).data]

    assert ids(uid="py_user", created={"gte": before}) == [order.id]
    assert order.id in ids(paid=True) and order.id not in ids(paid=False)
    assert order.id in ids(refunded=True) and order.id not in ids(refunded=False)
    assert unpaid.id in ids(canceled=1) and unpaid.id not in ids(canceled=0)
    assert unpaid.id in ids(receipt_app=app, service_app=app)
    assert ids(created={"gt": 4102444800}) == []
    assert order.id in ids(created={"lt": 4102444800, "lte": 4102444800})
    first = pingpp.Order.list(app=app, page=1, per_page=1)
    assert len(first.data) == 1 and first.has_more is True
    assert pingpp.Order.list(app=app, page=2, per_page=1).data[0].id != first.data[0].id

    with pytest.raises(pingpp.error.InvalidRequestError) as bad:
        new_order(app, "bad", amount=-5)
    assert bad.value.param == "amount"
    with pytest.raises(pingpp.error.InvalidRequestError):
        pingpp.Order.retrieve("2000000000000000000")


def test_signed_requests():
    pingpp.api_key = ENV["PAYGATE_SIGNED_KEY"]
    app = ENV["PAYGATE_SIGNED_APP"]
    with pytest.raises(pingpp.error.AuthenticationError):
        new_order(app, "unsigned")
    pingpp.private_key_path = ENV["PAYGATE_PRIVATE_KEY_FILE"]
    order = new_order(app, "signed")
    assert pingpp.Order.retrieve(order.id).id == order.id
    assert pingpp.Order.list(app=app, created={"gte": 0}).data[0].id == order.id
