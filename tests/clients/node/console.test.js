// The merchant console in Debian's Chromium (playwright-core) against the real paygate binary: sign-in, the
// payments list (search by each id, filters, both widths), a payment and a partial refund (seen on the page
// and in /v1), the audit log, sign-out, roles, another app's session, forged cross-site posts, the CSV export,
// a refund's event delivered to a webhook endpoint, key rolls, endpoints added, disabled, enabled and deleted, a
// test-mode charge paid with the sandbox button, and posts without the CSRF token. Every page visited is saved as target/console-screenshots/<db>/<step>.png (console_harness.js).
// Environment: see console_harness.js.
'use strict';
const { test, before, after, afterEach } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const http = require('node:http');
const { execFileSync } = require('node:child_process');
const { Harness, api, base, PASSWORD, LAPTOP, PHONE } = require('./console_harness');

const h = new Harness();
let shop; let other; let a; let b; let c;

before(async () => {
  await h.start();
  shop = h.app('shop');
  other = h.app('elsewhere');
  a = await h.order(shop, 'shop-a', 1234, { uid: 'payer-a' });
  b = await h.order(shop, 'shop-b', 500, { channel: 'alipay_qr' });
  c = await h.order(shop, 'shop-c', 300, { paid: false, uid: 'payer-c' });
  await h.order(other, 'other-a', 777);
});
after(() => h.stop());
afterEach(() => h.checkClean());

// The order ids of the list's rows (the first column links to the payment).
const listed = (page) => page.locator('tbody tr td:first-child a').allTextContents();
const refundsOf = async (order) => (await api(shop.key, 'GET', `/v1/orders/${order.id}/order_refunds`)).data;

test('admin: sign-in, search by each id, filters, a partial refund, audit log, sign-out', async () => {
  const page = await h.page();
  await h.login(page, shop, shop.users.admin, 'not the password', 'login-wrong-password', 401);
  assert.match(await page.getByRole('alert').textContent(), /The app, email or password is wrong\./);
  await h.login(page, shop, shop.users.admin, PASSWORD, 'payments');
  assert.deepEqual(await listed(page), [c.id, b.id, a.id], 'newest first, only this app');

  // The list at a laptop's and a phone's width; neither scrolls sideways.
  for (const [name, size] of [['laptop', LAPTOP], ['phone', PHONE]]) {
    await page.setViewportSize(size);
    await h.shot(page, `payments-${name}`);
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    assert.ok(overflow <= 0, `${name}: the page is ${overflow}px wider than the screen`);
  }
  await page.setViewportSize(LAPTOP);

  // The search box finds the payment by each kind of id.
  const refs = { 'order-id': a.id, 'merchant-order-no': a.merchant_order_no, 'charge-id': a.charge.id,
    'transaction-no': a.charge.transaction_no };
  for (const [kind, ref] of Object.entries(refs)) {
    assert.ok(ref, kind);
    await h.visit(page, '/console/test/payments', `search-${kind}-form`);
    await page.getByRole('searchbox').fill(ref);
    await h.submit(page, () => page.getByRole('searchbox').press('Enter'), `search-${kind}`);
    assert.equal(new URL(page.url()).pathname, `/console/test/payments/${a.id}`, kind);
  }
  await h.visit(page, '/console/test/payments', 'search-nothing-form');
  await page.getByRole('searchbox').fill('no-such-payment');
  await h.submit(page, () => page.getByRole('searchbox').press('Enter'), 'search-nothing');
  assert.match(await page.getByRole('status').textContent(), /No payment has this id\./);

  // Filters (by field name: a select's accessible name includes its chosen option): paid; a channel; a payer.
  const filter = async (step, fields) => {
    await h.visit(page, '/console/test/payments', `${step}-form`);
    for (const [name, value] of Object.entries(fields)) {
      const field = page.locator(`form.filters [name="${name}"]`);
      if (await field.evaluate((e) => e.tagName === 'SELECT')) await field.selectOption(value);
      else await field.fill(value);
    }
    await h.submit(page, () => page.getByRole('button', { name: 'Filter', exact: true }).click(), step);
    return listed(page);
  };
  assert.deepEqual(await filter('filter-paid', { status: 'paid' }), [b.id, a.id]);
  assert.deepEqual(await filter('filter-channel', { channel: 'alipay_qr' }), [b.id]);
  assert.deepEqual(await filter('filter-payer', { uid: 'payer-c' }), [c.id]);
  assert.deepEqual(await filter('filter-unpaid-payer-a', { status: 'unpaid', uid: 'payer-a' }), []);
  assert.match(await page.locator('main').textContent(), /No payments\./);

  // The payment, and part of it refunded: on the page, then in /v1.
  await h.visit(page, '/console/test/payments', 'payments-again');
  await h.submit(page, () => page.getByRole('link', { name: a.id, exact: true }).click(), 'payment');
  assert.match(await page.locator('dl').textContent(), /12\.34/);
  // Its tables (charges with 26–28 character ids, the settlement's nine columns) stay inside the page's column
  // at laptop widths: the id in the first cell breaks instead.
  for (const width of [1280, LAPTOP.width]) {
    await page.setViewportSize({ width, height: LAPTOP.height });
    await h.shot(page, `payment-${width}`);
    const over = await page.evaluate(() => {
      const main = document.querySelector('main');
      const edge = main.getBoundingClientRect().right - parseFloat(getComputedStyle(main).paddingRight);
      return [...main.querySelectorAll('table')]
        .map((t) => [t.previousElementSibling?.textContent, Math.round(t.getBoundingClientRect().right - edge)])
        .filter(([, px]) => px > 0).map(([name, px]) => `${name}: ${px}px`);
    });
    assert.deepEqual(over, [], `${width}px: tables wider than the page's column`);
  }
  await page.setViewportSize(LAPTOP);
  await page.getByLabel(/^Amount/).fill('2.34');
  await page.getByLabel('Reason', { exact: true }).fill('box arrived broken');
  await h.submit(page, () => page.getByRole('button', { name: 'Refund', exact: true }).click(), 'payment-refunded');
  assert.match(await page.getByRole('status').textContent(), /Refund created\./);
  const refundRows = await page.locator('h2:text-is("Refunds") + table tbody tr').allTextContents();
  assert.equal(refundRows.length, 1, refundRows.join('\n'));
  assert.match(refundRows[0], /2\.34.*box arrived broken/);
  const refunds = await refundsOf(a);
  assert.deepEqual(refunds.map((r) => [r.amount, r.description]), [[234, 'box arrived broken']]);
  assert.ok(refundRows[0].includes(refunds[0].id));
  assert.equal((await api(shop.key, 'GET', `/v1/orders/${a.id}`)).amount_refunded, 234);

  // Forged posts from pages of other origins, auto-submitting a refund form with this browser's cookies:
  // one from 127.0.0.1 on another port (same site, so the SameSite=Strict cookie IS sent — paygate's own
  // origin check must refuse it, even with the session's real CSRF token), one from `localhost` (cross-site,
  // no cookie, no token).
  const csrf = await page.locator('form[action$="/refunds"] input[name="csrf"]').inputValue();
  const formKey = await page.locator('input[name="form_key"]').inputValue();
  const forger = await forgery(`${base}/console/test/payments/${a.id}/refunds`);
  try {
    await h.visit(page, `${forger.url}/forge?csrf=${csrf}&form_key=${formKey}`, 'forger-same-site');
    await page.waitForURL(`${base}/console/**`);
    await h.shot(page, 'csrf-forged-same-site');
    assert.match(await page.locator('main').textContent(), /Cross-site request refused\./);
    await h.visit(page, `${forger.url.replace('127.0.0.1', 'localhost')}/forge`, 'forger-cross-site');
    await page.waitForURL(`${base}/console/**`);
    await h.shot(page, 'csrf-forged-cross-site');
    assert.equal(new URL(page.url()).pathname, '/console/login', 'no cookie went with it: not signed in');
    assert.equal(forger.posts, 0, 'the forms posted to paygate, not back to the forger');
  } finally {
    forger.server.close();
  }
  assert.equal((await refundsOf(a)).length, 1, 'the forged posts refunded nothing');
  assert.equal((await api(shop.key, 'GET', `/v1/orders/${a.id}`)).amount_refunded, 234);

  // The audit log holds the refund, by this admin.
  await h.visit(page, `/console/test/payments/${a.id}`, 'payment-after-forgery');
  await h.submit(page, () => page.getByRole('link', { name: 'Audit log', exact: true }).click(), 'audit');
  const audit = await page.locator('main tbody').textContent();
  const refundLine = (await page.locator('main tbody tr').allTextContents()).find((r) => r.includes('refund.create'));
  assert.ok(refundLine && refundLine.includes(shop.users.admin) && refundLine.includes(a.id), audit);

  // Sign-out: the session is gone.
  await h.submit(page, () => page.getByRole('button', { name: 'Sign out', exact: true }).click(), 'signed-out');
  assert.equal(new URL(page.url()).pathname, '/console/login');
  await h.visit(page, '/console/test/payments', 'after-sign-out');
  assert.equal(new URL(page.url()).pathname, '/console/login');
});

test('a viewer sees no refund form; support may refund but not open the audit log', async () => {
  const viewer = await h.signIn(shop, 'viewer');
  await h.visit(viewer, `/console/test/payments/${b.id}`, 'viewer-payment');
  assert.match(await viewer.locator('h1').textContent(), new RegExp(b.id), 'the viewer sees the payment');
  assert.equal(await viewer.locator('input[name="amount"]').count(), 0);
  assert.equal(await viewer.getByRole('button', { name: 'Refund', exact: true }).count(), 0);
  assert.equal(await viewer.getByRole('link', { name: 'Audit log' }).count(), 0);

  const support = await h.signIn(shop, 'support');
  await h.visit(support, `/console/test/payments/${b.id}`, 'support-payment');
  assert.equal(await support.locator('input[name="amount"]').count(), 1);
  // A double submit — the form sent twice at once from the page (its cookies, same origin) — refunds once: the
  // form's key. The later one answers the refund made (200 after the redirect) or 409 while the first runs.
  await support.locator('input[name="amount"]').fill('1.00');
  const statuses = await support.evaluate(() => {
    const form = document.querySelector('form[action$="/refunds"]');
    const send = () => fetch(form.action, { method: 'POST', body: new URLSearchParams(new FormData(form)) });
    return Promise.all([send(), send()].map((p) => p.then((r) => r.text().then(() => r.status))));
  });
  assert.ok(statuses.includes(200) && statuses.every((s) => s === 200 || s === 409), `${statuses}`);
  h.forgive(/status of 409 \(Conflict\)/);
  await h.visit(support, `/console/test/payments/${b.id}`, 'support-payment-refunded');
  assert.deepEqual((await refundsOf(b)).map((r) => r.amount), [100], 'one refund for two presses');
  assert.equal(await support.getByRole('link', { name: 'Audit log' }).count(), 0);
  await h.visit(support, '/console/test/audit', 'support-audit-refused', 403);
  assert.match(await support.getByRole('alert').textContent(), /Your role does not allow this\./);
});

test("another app's admin sees nothing of this one", async () => {
  const page = await h.signIn(other, 'admin', 'other-app-payments');
  const rows = await listed(page);
  assert.equal(rows.length, 1);
  assert.ok(!rows.includes(a.id));
  await h.visit(page, `/console/test/payments/${a.id}`, 'other-app-payment-refused', 404);
  await h.visit(page, `/console/test/payments?q=${a.merchant_order_no}`, 'other-app-search');
  assert.match(await page.getByRole('status').textContent(), /No payment has this id\./);
});

test('the list in Chinese (Accept-Language), at a phone\'s width', async () => {
  // Without a CJK font the screenshot is all boxes (.ci/run installs fonts-wqy-zenhei).
  assert.ok(execFileSync('fc-list', [':lang=zh'], { encoding: 'utf8' }).trim(), 'no Chinese font: fonts-wqy-zenhei');
  const page = await h.page({ locale: 'zh-CN', viewport: PHONE });
  await h.visit(page, '/console/login', 'zh-login');
  await page.locator('input[name="app"]').fill(shop.id);
  await page.locator('input[name="email"]').fill(shop.users.viewer);
  await page.locator('input[name="password"]').fill(PASSWORD);
  await h.submit(page, () => page.locator('form button').click(), 'zh-overview-phone');
  assert.equal(await page.locator('html').getAttribute('lang'), 'zh-CN');
  assert.match(await page.locator('h1').textContent(), /概览/);
  await h.visit(page, '/console/test/payments', 'zh-payments-phone');
  assert.match(await page.locator('h1').textContent(), /支付/);
});

test('the filtered list exported as CSV (downloaded by the browser) holds the same payments', async () => {
  const page = await h.signIn(shop, 'viewer', 'export-signed-in');
  await h.visit(page, '/console/test/payments?status=paid', 'export-list-paid');
  const shown = await listed(page);
  assert.ok(shown.length >= 2, `${shown}`);
  const link = page.getByRole('link', { name: 'Export CSV', exact: true });
  assert.match(await link.getAttribute('href'), /^\/console\/test\/payments\.csv\?status=paid$/);
  const [download] = await Promise.all([page.waitForEvent('download'), link.click()]);
  assert.equal(download.suggestedFilename(), 'payments-test.csv');
  const csv = fs.readFileSync(await download.path(), 'utf8').replace(/^\uFEFF/, '');
  const lines = csv.split('\r\n').filter((l) => l !== '');
  assert.match(lines[0], /^Order,/, lines[0]);
  assert.deepEqual(lines.slice(1).map((l) => l.split(',')[0]), shown, csv);
  // The unfiltered export has the unpaid one as well; another app's payment in neither.
  const all = await page.request.get(`${base}/console/test/payments.csv`);
  assert.equal(all.status(), 200);
  const ids = (await all.text()).split('\r\n').slice(1).filter((l) => l).map((l) => l.split(',')[0]);
  assert.ok(ids.includes(c.id) && !shown.includes(c.id) && ids.length === shown.length + 1, `${ids}`);
  await h.shot(page, 'export-after-download');
});

test('a refund on the payment page shows its refund.succeeded event and the delivery to the endpoint', async () => {
  const hooks = h.app('hooks');
  const receiver = await webhookReceiver();
  try {
    const page = await h.signIn(hooks, 'admin', 'hooks-signed-in');
    await h.visit(page, '/console/test/webhooks', 'hooks-webhooks');
    await page.getByLabel('URL', { exact: true }).fill(`${receiver.url}/paygate`);
    await page.getByLabel('refund.succeeded', { exact: true }).check();
    await h.submit(page, () => page.getByRole('button', { name: 'Add endpoint', exact: true }).click(),
      'hooks-endpoint-created');
    const endpointId = (await page.locator('dl dd').first().textContent()).trim();
    const order = await h.order(hooks, 'hooks-a', 900);
    await h.visit(page, `/console/test/payments/${order.id}`, 'hooks-payment');
    await page.getByLabel(/^Amount/).fill('4.00');
    await page.getByLabel('Reason', { exact: true }).fill('wrong size');
    await h.submit(page, () => page.getByRole('button', { name: 'Refund', exact: true }).click(), 'hooks-refunded');
    const [refund] = (await api(hooks.key, 'GET', `/v1/orders/${order.id}/order_refunds`)).data;
    assert.equal(refund.amount, 400);
    // The worker (PAYGATE_WORKER_POLL_MS=50 in tests/clients/run) delivers it; the page shows the attempt.
    const eventRow = () => page.locator('h2:text-is("Events") + table tbody tr', { hasText: 'refund.succeeded' });
    let row = '';
    for (let i = 0; i < 100; i += 1) {
      await h.visit(page, `/console/test/payments/${order.id}`, 'hooks-payment-event');
      row = (await eventRow().count()) === 1 ? await eventRow().textContent() : '';
      if (row.includes(`${endpointId} · delivered`)) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.ok(row.includes(refund.id), `the event is the refund's: ${row}`);
    assert.match(row, new RegExp(`${endpointId} · delivered · 1.*→ 200 \\(\\d+ ms\\)`), row);
    const delivered = receiver.bodies.map((b) => JSON.parse(b)).filter((e) => e.type === 'refund.succeeded');
    assert.equal(delivered.length, 1, receiver.bodies.join('\n'));
    assert.equal(delivered[0].data.object.id, refund.id);
    assert.ok(row.includes(delivered[0].id), 'the page shows the delivered event');
  } finally {
    receiver.server.close();
  }
});

test('an admin rolls the test key and the new one works on /v1; support may not', async () => {
  const keys = h.app('keys');
  const order = await h.order(keys, 'keys-a', 100);
  const support = await h.signIn(keys, 'support', 'keys-support-signed-in');
  await h.visit(support, '/console/test/developers', 'keys-support-developers-refused', 403);
  assert.match(await support.getByRole('alert').textContent(), /Your role does not allow this\./);
  assert.equal(await support.getByRole('link', { name: 'Developers', exact: true }).count(), 0);
  // Support's own valid CSRF token (from its refund form) and same origin: refused by the role, not the form.
  await h.visit(support, `/console/test/payments/${order.id}`, 'keys-support-payment');
  const csrf = await support.locator('form[action$="/refunds"] input[name="csrf"]').inputValue();
  const rolled = await support.request.post(`${base}/console/test/developers/roll-key`,
    { form: { csrf, grace_hours: '1' }, headers: { origin: base }, maxRedirects: 0 });
  assert.equal(rolled.status(), 403, await rolled.text());
  assert.ok(!(await rolled.text()).includes(' id="new-key"'));

  const admin = await h.signIn(keys, 'admin', 'keys-admin-signed-in');
  await h.submit(admin, () => admin.getByRole('link', { name: 'Developers', exact: true }).click(), 'keys-developers');
  await admin.getByLabel('Grace period (hours)', { exact: true }).fill('1');
  await h.submit(admin, () => admin.getByRole('button', { name: 'Roll key', exact: true }).click(), 'keys-rolled');
  assert.match(await admin.getByRole('status').textContent(), /New secret key, shown only now/);
  const newKey = (await admin.locator('#new-key').textContent()).trim();
  assert.match(newKey, /^sk_test_/);
  assert.notEqual(newKey, keys.key);
  assert.equal((await api(newKey, 'GET', `/v1/orders/${order.id}`)).id, order.id);
  await h.order({ ...keys, key: newKey }, 'keys-b', 200);
  assert.equal((await api(keys.key, 'GET', `/v1/orders/${order.id}`)).id, order.id, 'the old key, in its grace');
  // Shown once: the page again has no key on it.
  await h.visit(admin, '/console/test/developers', 'keys-developers-again');
  assert.equal(await admin.locator('#new-key').count(), 0);
  assert.ok(!(await admin.content()).includes(newKey));
  // One roll in the audit log: the admin's, none by support.
  await h.visit(admin, '/console/test/audit', 'keys-audit');
  const rolls = (await admin.locator('main tbody tr').allTextContents()).filter((r) => r.includes('api_key.roll'));
  assert.equal(rolls.length, 1, rolls.join('\n'));
  assert.ok(rolls[0].includes(keys.users.admin), rolls[0]);
  h.forgive(/status of 403 \(Forbidden\)/);
});

test('webhooks: an endpoint created, listed, disabled, enabled, deleted and gone', async () => {
  const page = await h.signIn(shop, 'admin', 'webhooks-signed-in');
  await h.submit(page, () => page.getByRole('link', { name: 'Webhooks', exact: true }).click(), 'webhooks');
  const url = `https://hooks.example.com/paygate/${Date.now().toString(36)}`;
  await page.getByLabel('URL', { exact: true }).fill(url);
  await h.submit(page, () => page.getByRole('button', { name: 'Add endpoint', exact: true }).click(),
    'webhooks-created');
  assert.match(await page.getByRole('status').textContent(), /Endpoint added\./);
  assert.match(await page.locator('#secret').textContent(), /\S{16,}/, 'the signing secret, shown once');
  const id = (await page.locator('dl dd').first().textContent()).trim();
  await h.submit(page, () => page.getByRole('link', { name: 'Back to webhooks', exact: true }).click(),
    'webhooks-listed');
  const row = page.locator('h2:text-is("Endpoints") + table tbody tr', { hasText: id });
  assert.equal(await row.count(), 1);
  assert.match(await row.textContent(), new RegExp(`${url.replace(/[.]/g, '\\.')}.*every event`));
  assert.equal(await page.locator('#secret').count(), 0);
  assert.equal((await row.locator('td[data-k="Status"]').textContent()).trim(), 'Enabled');
  await h.submit(page, () => row.getByRole('button', { name: 'Disable', exact: true }).click(), 'webhooks-disabled');
  assert.match(await page.getByRole('status').textContent(), /Endpoint disabled:/);
  assert.equal((await row.locator('td[data-k="Status"]').textContent()).trim(), 'Disabled');
  assert.equal(await row.getByRole('button', { name: 'Disable', exact: true }).count(), 0);
  assert.equal((await api(shop.key, 'GET', '/v1/webhook_endpoints')).data.find((e) => e.id === id).status, 'disabled');
  await h.submit(page, () => row.getByRole('button', { name: 'Enable', exact: true }).click(), 'webhooks-enabled');
  assert.match(await page.getByRole('status').textContent(), /Endpoint enabled:/);
  assert.equal((await row.locator('td[data-k="Status"]').textContent()).trim(), 'Enabled');
  assert.equal((await api(shop.key, 'GET', '/v1/webhook_endpoints')).data.find((e) => e.id === id).status, 'enabled');
  await h.submit(page, () => row.getByRole('button', { name: 'Delete', exact: true }).click(), 'webhooks-deleted');
  assert.match(await page.getByRole('status').textContent(), /Endpoint deleted\./);
  assert.ok(!(await page.locator('main').textContent()).includes(id), 'gone from the page');
  const audit = await page.request.get(`${base}/console/test/audit`);
  const text = await audit.text();
  for (const action of ['create', 'disable', 'enable', 'delete']) {
    assert.ok(text.includes(`webhook_endpoint.${action}`), action);
  }
});

test("the sandbox pay button completes a test-mode pending charge: the payment page shows it paid", async () => {
  const sandbox = h.app('sandbox');
  const order = await h.order(sandbox, 'sandbox-a', 650, { paid: false });
  const paying = await api(sandbox.key, 'POST', `/v1/orders/${order.id}/pay`, { channel: 'alipay_qr' });
  const chargeId = paying.charges.data[0].id;
  assert.equal((await api(sandbox.key, 'GET', `/v1/charges/${chargeId}`)).paid, false);
  // A viewer gets no button; the admin's click pays the charge at the sandbox.
  const viewer = await h.signIn(sandbox, 'viewer', 'sandbox-viewer-signed-in');
  await h.visit(viewer, `/console/test/payments/${order.id}`, 'sandbox-viewer-payment');
  assert.equal(await viewer.getByRole('button', { name: /^Pay \(sandbox\)/ }).count(), 0);
  const page = await h.signIn(sandbox, 'admin', 'sandbox-signed-in');
  await h.visit(page, `/console/test/payments/${order.id}`, 'sandbox-payment-pending');
  const pay = page.getByRole('button', { name: `Pay (sandbox) ${chargeId}`, exact: true });
  assert.equal(await pay.count(), 1);
  await h.submit(page, () => pay.click(), 'sandbox-paid');
  assert.equal(new URL(page.url()).pathname, `/console/test/payments/${order.id}`);
  assert.match(await page.getByRole('status').textContent(), /The sandbox charge was paid\./);
  assert.match(await page.locator('main').textContent(), /paid/);
  assert.equal(await page.getByRole('button', { name: /^Pay \(sandbox\)/ }).count(), 0, 'no longer pending');
  const done = await api(sandbox.key, 'GET', `/v1/orders/${order.id}`);
  assert.equal(done.status, 'paid');
  assert.equal(done.amount_paid, 650);
  assert.equal((await api(sandbox.key, 'GET', `/v1/charges/${chargeId}`)).paid, true);
});

test('a POST without the CSRF token (same origin, session cookie) is refused and changes nothing', async () => {
  const page = await h.signIn(shop, 'admin', 'no-csrf-signed-in');
  await h.visit(page, `/console/test/payments/${b.id}`, 'no-csrf-payment');
  const formKey = await page.locator('input[name="form_key"]').inputValue();
  const before = await refundsOf(b);
  const post = (form) => page.request.post(`${base}/console/test/payments/${b.id}/refunds`,
    { form, headers: { origin: base }, maxRedirects: 0 });
  const refused = await post({ form_key: formKey, amount: '1.00', reason: 'no token' });
  assert.equal(refused.status(), 403);
  assert.match(await refused.text(), /The form expired\./, 'refused for the token, not for a missing session');
  const wrong = await post({ csrf: 'not-the-token', form_key: formKey, amount: '1.00', reason: 'wrong token' });
  assert.equal(wrong.status(), 403);
  const keyRoll = await page.request.post(`${base}/console/test/developers/roll-key`,
    { form: { grace_hours: '1' }, headers: { origin: base }, maxRedirects: 0 });
  assert.equal(keyRoll.status(), 403);
  assert.deepEqual(await refundsOf(b), before, 'no refund made');
  await api(shop.key, 'GET', `/v1/orders/${b.id}`); // the key was not rolled away (it would still work: grace)
  await h.visit(page, '/console/test/audit', 'no-csrf-audit');
  const rolls = (await page.locator('main tbody tr').allTextContents()).filter((r) => r.includes('api_key.roll'));
  assert.deepEqual(rolls, [], 'no key roll');
  // The same request with the session's token goes through: the refusal was the token's.
  const csrf = await page.locator('input[name="csrf"]').first().inputValue();
  const ok = await post({ csrf, form_key: formKey, amount: '1.00', reason: 'with token' });
  assert.equal(ok.status(), 303, await ok.text());
  assert.equal((await refundsOf(b)).length, before.length + 1);
});

// A webhook receiver on 127.0.0.1 (tests/clients/run allows private webhook URLs): answers 200, keeps bodies.
async function webhookReceiver() {
  const bodies = [];
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (d) => { body += d; });
    req.on('end', () => { bodies.push(body); res.writeHead(200); res.end('ok'); });
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, bodies, url: `http://127.0.0.1:${server.address().port}` };
}

// A server on another port of 127.0.0.1 (so `localhost` names it from another site too) whose /forge page
// auto-submits a refund form to `action`, carrying whatever csrf/form_key its query gives.
async function forgery(action) {
  const state = { posts: 0 };
  const server = http.createServer((req, res) => {
    if (req.method === 'POST') state.posts += 1;
    const q = new URL(req.url, 'http://x').searchParams;
    const hidden = ['csrf', 'form_key'].filter((n) => q.get(n))
      .map((n) => `<input type="hidden" name="${n}" value="${encodeURIComponent(q.get(n))}">`).join('');
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
    res.end(`<!doctype html><title>You won a prize</title><h1>You won a prize</h1>
      <form method="post" action="${action}">${hidden}<input type="hidden" name="amount" value="1.00">
      <input type="hidden" name="reason" value="forged"></form>
      <script>setTimeout(() => document.forms[0].submit(), 300)</script>`);
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, url: `http://127.0.0.1:${server.address().port}`, get posts() { return state.posts; } };
}
