// The browser harness for the console tests: Debian's Chromium driven by playwright-core (no browser
// download), console users made with the real `paygate user create`, payments made through /v1, and a
// screenshot of every page a test visits (target/console-screenshots/<db>/<step>.png).
// A new flow is a few lines in console.test.js:
//   const page = await h.signIn('admin');
//   await h.visit(page, '/console/test/webhooks', 'webhooks');
// Environment (set by tests/clients/run): PAYGATE_BASE, PAYGATE_BIN, PAYGATE_DATABASE, PAYGATE_DB_NAME;
// CHROMIUM (default /usr/bin/chromium); PAYGATE_SCREENSHOTS (default target/console-screenshots/<db>).
'use strict';
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { execFileSync } = require('node:child_process');
const { chromium } = require('playwright-core');

const env = process.env;
for (const name of ['PAYGATE_BASE', 'PAYGATE_BIN', 'PAYGATE_DATABASE']) {
  assert.ok(env[name], `${name} is not set: run this through tests/clients/run (see its header)`);
}
const base = env.PAYGATE_BASE;
const run = Date.now().toString(36);
const PASSWORD = `console pass ${run}`;
const shots = env.PAYGATE_SCREENSHOTS
  || path.resolve(__dirname, '../../../target/console-screenshots', env.PAYGATE_DB_NAME || 'default');
const LAPTOP = { width: 1366, height: 800 };
const PHONE = { width: 390, height: 844 };

// Runs the real binary's CLI against the server's database (as an operator would).
function cli(args, input) {
  return execFileSync(env.PAYGATE_BIN, [...args, '--database', env.PAYGATE_DATABASE],
    { encoding: 'utf8', input, stdio: ['pipe', 'pipe', 'inherit'] });
}

// /v1 with an app's secret key; any answer but 200 fails the test with the body.
async function api(key, method, urlPath, body) {
  const res = await fetch(base + urlPath, {
    method, headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  assert.equal(res.status, 200, `${method} ${urlPath}: ${text}`);
  return JSON.parse(text);
}

// The test-mode signing credentials of an app's other faces, as its operator reads them with the CLI:
// the cashier's { public_id, secret, token } and the 知晓云 client id.
function faceCredentials(app) {
  const credentials = cli(['app', 'credentials', app.id]).trim().split('\n').map((line) => JSON.parse(line));
  const cashier = credentials.find((c) => c.face === 'cashier' && !c.livemode);
  const hserve = JSON.parse(cli(['app', 'hserve-clients', app.id, '--json'])).find((c) => !c.livemode);
  assert.ok(cashier && hserve, `${app.id}: no test-mode cashier credential or 知晓云 client`);
  return { cashier, hserveClientId: hserve.client_id };
}

class Harness {
  constructor() {
    this.browser = null;
    this.contexts = [];
    this.problems = [];
    this.passwordFile = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'paygate-console-')), 'password');
    fs.writeFileSync(this.passwordFile, `${PASSWORD}\n`, { mode: 0o600 });
    // Only this run's pages: a step renamed or dropped leaves no stale picture behind.
    fs.mkdirSync(shots, { recursive: true });
    for (const f of fs.readdirSync(shots)) if (f.endsWith('.png')) fs.rmSync(path.join(shots, f));
  }

  async start() {
    // Chromium refuses to start as root with its sandbox (CI containers run as root); a normal user keeps it.
    const root = typeof process.getuid === 'function' && process.getuid() === 0;
    this.browser = await chromium.launch({
      executablePath: env.CHROMIUM || '/usr/bin/chromium', headless: true, chromiumSandbox: !root,
    });
  }

  async stop() {
    if (this.browser) await this.browser.close();
    fs.rmSync(path.dirname(this.passwordFile), { recursive: true, force: true });
  }

  // A new app (CLI), with its test secret key, and console users of each role ({admin, support, viewer}).
  app(name) {
    const app = JSON.parse(cli(['app', 'create', '--name', `${name}-${run}`, '--json']));
    const users = {};
    for (const role of ['admin', 'support', 'viewer']) {
      users[role] = `${role}@${name}-${run}.test`;
      const out = cli(['user', 'create', '--app', app.id, '--email', users[role], '--role', role,
        '--password-file', this.passwordFile]);
      assert.match(out, new RegExp(`${role} \\(app ${app.id}\\)`));
    }
    return { id: app.id, key: app.test_secret_key, users };
  }

  // An order through /v1, paid with `channel` in the sandbox unless `paid` is false. Returns the order with
  // its first charge (transaction_no and all) as `charge`.
  async order(app, merchantOrderNo, amount, { channel = 'wx_pub', paid = true, uid } = {}) {
    const order = await api(app.key, 'POST', '/v1/orders', {
      app: app.id, merchant_order_no: merchantOrderNo, amount, currency: 'cny', subject: `Subject ${merchantOrderNo}`,
      body: 'Body', client_ip: '127.0.0.1', ...(uid ? { uid } : {}),
    });
    if (!paid) return order;
    const extra = channel === 'wx_pub' ? { open_id: 'o1' } : {};
    const paying = await api(app.key, 'POST', `/v1/orders/${order.id}/pay`, { channel, extra });
    const chargeId = paying.charges.data[0].id;
    await api(app.key, 'POST', `/v1/sandbox/charges/${chargeId}/pay`, { result: 'success' });
    const done = await api(app.key, 'GET', `/v1/orders/${order.id}`);
    assert.equal(done.status, 'paid');
    done.charge = await api(app.key, 'GET', `/v1/charges/${chargeId}`);
    return done;
  }

  // A fresh browser context (own cookies) with a page; failed requests and console errors (a CSP refusal of
  // the stylesheet, say) are collected and fail the test at `checkClean`.
  async page({ viewport = LAPTOP, locale = 'en-US' } = {}) {
    const context = await this.browser.newContext({ viewport, locale });
    this.contexts.push(context);
    const page = await context.newPage();
    page.setDefaultTimeout(10_000);
    page.on('console', (m) => {
      // A page answered with an error status is logged as a console error; visit/submit check that status.
      // The console serves no /favicon.ico (Chromium asks for it on its own); that 404 is no page's fault.
      const url = m.location().url;
      const ownStatus = m.text().startsWith('Failed to load resource: the server responded with a status of')
        && (url === page.url() || new URL(url, base).pathname === '/favicon.ico');
      if (m.type() === 'error' && !ownStatus) this.problems.push(`console: ${m.text()} (${m.location().url})`);
    });
    page.on('pageerror', (e) => this.problems.push(`page error: ${e.message}`));
    page.on('requestfailed', (r) => this.problems.push(`request failed: ${r.url()} ${r.failure()?.errorText}`));
    return page;
  }

  // Saves the page as <step>.png (whole page); every navigation helper calls it.
  async shot(page, step) {
    assert.ok(/^[a-z0-9-]+$/.test(step), `step names are file names: ${step}`);
    await page.screenshot({ path: path.join(shots, `${step}.png`), fullPage: true });
  }

  // GETs a path (or URL), checks the answer's status, screenshots it. Returns the response.
  async visit(page, target, step, status = 200) {
    const res = await page.goto(target.startsWith('http') ? target : base + target);
    assert.equal(res.status(), status, `${target}: ${await page.content()}`);
    await this.shot(page, step);
    return res;
  }

  // Runs `act` (a click, a form submit) and waits for the page it navigates to; checks status; screenshot.
  async submit(page, act, step, status = 200) {
    const [res] = await Promise.all([page.waitForNavigation(), act()]);
    assert.equal(res.status(), status, `${step} at ${page.url()}: ${await page.content()}`);
    await this.shot(page, step);
    return res;
  }

  // The login form filled and sent; `status` 200 means it signed in (303 → the overview, whose screenshot is
  // `<step>-overview`), and the page then goes on to the payments list (`<step>`).
  async login(page, app, email, password, step, status = 200) {
    await this.visit(page, '/console/login', `${step}-form`);
    await page.getByLabel('App id', { exact: true }).fill(app.id);
    await page.getByLabel('Email', { exact: true }).fill(email);
    await page.getByLabel('Password', { exact: true }).fill(password);
    const signIn = () => page.getByRole('button', { name: 'Sign in', exact: true }).click();
    if (status !== 200) return this.submit(page, signIn, step, status);
    await this.submit(page, signIn, `${step}-overview`, status);
    assert.match(new URL(page.url()).pathname, /^\/console\/test$/, 'signed in: the overview');
    return this.visit(page, '/console/test/payments', step);
  }

  // A signed-in page of `role` of `app`, on the payments list.
  async signIn(app, role, step = `${role}-signed-in`) {
    const page = await this.page();
    await this.login(page, app, app.users[role], PASSWORD, step);
    assert.match(new URL(page.url()).pathname, /^\/console\/test\/payments$/);
    return page;
  }

  // Forgets the problems so far that match `pattern` (an error answer a test asked for and checked).
  forgive(pattern) {
    this.problems = this.problems.filter((p) => !pattern.test(p));
  }

  // No console errors or failed requests so far (then forgets them).
  checkClean() {
    const problems = this.problems.splice(0);
    assert.deepEqual(problems, [], problems.join('\n'));
  }
}

module.exports = { Harness, api, faceCredentials, base, PASSWORD, LAPTOP, PHONE, shots };
