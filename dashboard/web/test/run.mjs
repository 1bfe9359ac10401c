// Drives the dashboard in headless Chromium (Debian's, through
// playwright-core) and checks what a person would see. Run by the Go tests
// (internal/browsertest) as: node test/run.mjs <scenario>, with
//   CHROMIUM     the browser executable
//   BASE_URL     the tracker, such as http://localhost:8080
//   STATS_TOKEN  the token to sign in with
//   EXPECT       a JSON file of what the page must show
//   ARTIFACTS    the folder for screenshots
// Scenarios: "tracker" (a real tracker: sign-in, wrong token, channels,
// chart, builds, history, phone size, keyboard, sign-out), "rollout"
// (staged rollouts as a Source returns them) and "empty" (no app).
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

const require = createRequire(import.meta.url);
const env = (name) => {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set; run this script from the Go tests (go test ./tracker ./dashboard)`);
  return v;
};
const base = env('BASE_URL');
const token = env('STATS_TOKEN');
const expect = JSON.parse(await readFile(env('EXPECT'), 'utf8'));
const artifacts = env('ARTIFACTS');
const scenario = process.argv[2];
const locale = 'en-US';
const timezoneId = expect.timezone;

const browser = await chromium.launch({ executablePath: env('CHROMIUM'), headless: true, args: ['--no-sandbox'] });
const problems = []; // console errors, page errors and CSP violations

function watch(page) {
  page.on('console', (m) => {
    const text = m.text();
    // The wrong-token sign-in is answered 401, as it should be; Chrome logs
    // that whenever the message arrives, so it is told apart by its URL.
    if (/status of 401/.test(text) && (m.location().url || '').endsWith('/dashboard/signin')) return;
    if (m.type() === 'error' || /Content.Security.Policy/i.test(text)) problems.push(`console ${m.type()}: ${text}`);
  });
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('requestfailed', (r) => problems.push(`request failed: ${r.url()} ${r.failure()?.errorText}`));
  page.on('request', (r) => {
    if (!r.url().startsWith(base)) problems.push(`request to another origin: ${r.url()}`);
  });
}

async function newContext(viewport = { width: 1280, height: 900 }) {
  const ctx = await browser.newContext({ locale, timezoneId, viewport, colorScheme: 'light' });
  await ctx.addInitScript(() => {
    window.__csp = [];
    document.addEventListener('securitypolicyviolation', (e) => window.__csp.push(`${e.violatedDirective} ${e.blockedURI}`));
  });
  return ctx;
}

async function cspViolations(page) {
  return page.evaluate(() => window.__csp);
}

const axeSource = await readFile(require.resolve('axe-core/axe.min.js'), 'utf8');

// axeCheck runs axe-core in the page and fails on serious or critical
// violations.
async function axeCheck(page, what) {
  await page.evaluate(axeSource);
  const res = await page.evaluate(() => window.axe.run(document, { resultTypes: ['violations'] }));
  const bad = res.violations;
  assert.deepEqual(bad.map((v) => `${v.id} (${v.impact}): ${v.help} at ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`), [],
    `accessibility violations on ${what}`);
  console.log(`axe on ${what}: no findings`);
}

const shot = (page, name) => page.screenshot({ path: join(artifacts, `${name}.png`), fullPage: true });

const fmt = new Intl.DateTimeFormat(locale, { dateStyle: 'medium', timeStyle: 'short', timeZone: timezoneId });
const local = (iso) => fmt.format(new Date(iso));

async function signIn(page, tok) {
  await page.goto(`${base}/dashboard`);
  assert.equal(new URL(page.url()).pathname, '/dashboard/signin', 'an anonymous visit goes to the sign-in page');
  await page.getByLabel('Stats token').fill(tok);
  await Promise.all([page.waitForLoadState('load'), page.getByRole('button', { name: 'Sign in' }).press('Enter')]);
}

async function waitReady(page) {
  await page.waitForSelector('body[data-ready]');
  assert.equal(await page.getAttribute('body', 'data-ready'), 'true', `dashboard failed to load: ${await page.textContent('#status')}`);
}

// checkDashboard compares the page with what the Source holds.
async function checkDashboard(page) {
  await waitReady(page);
  if (await page.inputValue('#app') !== expect.app) {
    await page.getByLabel('App', { exact: true }).selectOption(expect.app);
    await waitReady(page);
  }
  assert.equal((await page.textContent('h1')).trim(), expect.app);
  assert.deepEqual(await page.$$eval('#app option', (os) => os.map((o) => o.value)), expect.apps);
  const rows = await page.$$eval('#channels tbody tr', (trs) => trs.map((tr) => [...tr.children].map((c) => c.textContent.trim())));
  assert.deepEqual(rows.map((r) => r[0]), expect.channels.map((c) => c.name), 'channels');
  for (const [i, c] of expect.channels.entries()) {
    assert.equal(rows[i][1], `${c.version} (${c.build_id})`, `build of ${c.name}`);
    assert.equal(rows[i][3], local(c.expires), `expiry of ${c.name} in ${timezoneId}`);
    assert.equal(rows[i][4], String(c.sequence), `sequence of ${c.name}`);
    if (c.rollout) {
      const r = c.rollout;
      const cell = page.locator(`#channels [data-rollout="${r.id}"]`);
      const text = await cell.textContent();
      assert.equal(await cell.locator('.badge').textContent(), r.state, `rollout state of ${c.name}`);
      if (r.state === 'halted') { // offered to no device, whatever its share was
        assert.match(text, new RegExp(`${r.version} \\(${r.build_id}\\) was at ${r.percent}% of devices: now offered to none`), `rollout of ${c.name}`);
        assert.equal(await cell.locator('meter').count(), 0, `no share meter on the halted rollout of ${c.name}`);
      } else {
        assert.match(text, new RegExp(`${r.version} \\(${r.build_id}\\) at ${r.percent}% of devices`), `rollout of ${c.name}`);
        assert.equal(Number(await cell.locator('meter').getAttribute('value')), r.percent);
      }
      if (r.why) assert.ok(text.includes(`why: ${r.why}`), `why of ${c.name}: ${text}`);
    } else {
      assert.match(rows[i][2], /^none/, `no rollout on ${c.name}`);
    }
  }
  // The adoption chart: one point per bucket, drawn on the canvas, and the
  // same numbers in the table for screen readers.
  const a = expect.adoption.hour;
  assert.equal(await page.getAttribute('#chart', 'data-points'), String(a.points), 'points of the hourly chart');
  const inked = await page.$eval('#chart-plot canvas', (c) => {
    const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
    let n = 0;
    for (let i = 3; i < d.length; i += 4) if (d[i] > 0) n++;
    return n;
  });
  assert.ok(inked > 500, `the chart's canvas is drawn (${inked} pixels inked)`);
  const table = await page.$$eval('#adoption-table tbody tr', (trs) => trs.map((tr) => [...tr.children].map((c) => c.textContent.trim())));
  assert.equal(table.length, a.points, 'rows of the adoption table');
  const head = await page.$$eval('#adoption-table thead th', (ths) => ths.map((t) => t.textContent.trim()));
  assert.deepEqual(head.slice(1), a.series.map((s) => `${s.version} (${s.build_id})`), 'series of the chart');
  assert.deepEqual(table.at(-1).slice(1), a.series.map((s) => String(s.last)), 'devices per build in the last bucket');
  assert.equal(table[0][0], local(a.first), `first bucket in ${timezoneId}`);
  // Builds and history.
  assert.equal(await page.locator('#builds tbody tr').count(), expect.builds, 'rows of the builds table');
  for (const [channel, entries] of Object.entries(expect.history)) {
    const items = page.locator(`section.history:has(h3:text-is("${channel}")) li`);
    assert.equal(await items.count(), entries.length, `history entries of ${channel}`);
    for (const [i, e] of entries.entries()) {
      const text = await items.nth(i).textContent();
      assert.ok(text.startsWith(`#${e.sequence}`), `history of ${channel}: ${text}`);
      const badge = await items.nth(i).locator('.badge').textContent();
      if (!e.verified) {
        assert.ok(badge.startsWith('not verified: '), `not verified badge in ${channel}: ${text}`);
        assert.ok(!text.includes('moved it to'), `nothing shown of an entry that does not verify in ${channel}: ${text}`);
        continue;
      }
      assert.equal(badge, 'signature verified', `verified badge in ${channel}: ${text}`);
      assert.ok(text.includes(`${e.by} moved it to ${e.version}`), `who and what in ${channel}: ${text}`);
      assert.ok(text.includes(local(e.issued)), `when in ${channel}: ${text}`);
      if (e.change) assert.ok(text.startsWith(`#${e.sequence} ${e.change}: `), `change in ${channel}: ${text}`);
      if (e.change === '') assert.ok(!/^#\d+ [a-z ]+: /.test(text), `no change shown in ${channel}: ${text}`);
      if (e.notes) assert.ok(text.includes(e.notes), `notes in ${channel}: ${text}`);
      const r = e.rollout;
      assert.equal(text.includes(' with '), Boolean(r), `rollout in ${channel}: ${text}`);
      if (r) assert.ok(text.includes(` with ${r.version} at ${r.percent}% (${r.state})`), `rollout in ${channel}: ${text}`);
      assert.equal(text.includes(', dropping candidate '), Boolean(e.dropped), `dropped candidate in ${channel}: ${text}`);
      if (e.dropped) assert.ok(text.includes(`, dropping candidate ${e.dropped}`), `dropped candidate in ${channel}: ${text}`);
    }
  }
}

async function trackerScenario() {
  const ctx = await newContext();
  const page = await ctx.newPage();
  watch(page);

  // A wrong token is refused: 401, a message, no cookie.
  const wrong = page.waitForResponse((r) => r.url().endsWith('/dashboard/signin') && r.request().method() === 'POST');
  await signIn(page, `${token}-wrong`);
  assert.equal((await wrong).status(), 401, 'a wrong token is answered 401');
  assert.match(await page.getByRole('alert').textContent(), /Wrong token/);
  assert.deepEqual(await ctx.cookies(), [], 'no cookie after a wrong token');
  await axeCheck(page, 'the sign-in page with an error');
  await shot(page, 'signin-refused');
  assert.deepEqual(await cspViolations(page), [], 'CSP violations on the sign-in page');

  // The right token signs in; the cookie holds a session, not the token.
  await signIn(page, token);
  assert.equal(new URL(page.url()).pathname, '/dashboard');
  assert.ok(!page.url().includes(token), 'no token in the URL');
  const cookies = await ctx.cookies();
  assert.equal(cookies.length, 1);
  const [c] = cookies;
  assert.deepEqual([c.httpOnly, c.secure, c.sameSite, c.path], [true, true, 'Strict', '/'], 'cookie attributes');
  assert.ok(!c.value.includes(token), 'the cookie does not hold the token');
  await checkDashboard(page);
  assert.equal((await page.textContent('#zone')).trim(), `Times are in your time zone, ${fmt.resolvedOptions().timeZone}.`);
  await axeCheck(page, 'the dashboard');
  await shot(page, 'dashboard');

  // Daily buckets.
  await page.getByLabel('day', { exact: true }).check();
  await page.waitForFunction((n) => document.querySelector('#chart').dataset.points === String(n), expect.adoption.day.points);

  // After a reload (the app stays chosen in the URL's fragment), the
  // keyboard reaches the skip link, the app menu and sign-out in order.
  await page.reload();
  await waitReady(page);
  assert.equal(await page.inputValue('#app'), expect.app, 'the chosen app after a reload');
  await page.keyboard.press('Tab');
  const order = [];
  for (let i = 0; i < 3; i++) {
    order.push(await page.evaluate(() => document.activeElement.id || document.activeElement.textContent.trim()));
    await page.keyboard.press('Tab');
  }
  assert.deepEqual(order, ['Skip to content', 'app', 'Sign out'], 'tab order');

  // A phone: nothing wider than the screen, tables scroll in their region.
  await page.setViewportSize({ width: 390, height: 844 });
  // The chart follows its box; then nothing is wider than the screen.
  await page.waitForFunction(() => document.documentElement.scrollWidth <= window.innerWidth, null, { timeout: 5000 })
    .catch(() => assert.fail('the page scrolls sideways on a phone'));
  await axeCheck(page, 'the dashboard on a phone');
  await shot(page, 'dashboard-phone');
  assert.deepEqual(await cspViolations(page), [], 'CSP violations on the dashboard');

  // Sign-out ends the session for the API too, even for a copy of the
  // cookie kept from before.
  const [session] = await ctx.cookies();
  await Promise.all([page.waitForURL('**/dashboard/signin'), page.getByRole('button', { name: 'Sign out' }).click()]);
  assert.equal((await page.request.get(`${base}/api/apps`)).status(), 401, 'the API after sign-out');
  const kept = await page.request.get(`${base}/api/apps`, { headers: { Cookie: `${session.name}=${session.value}` } });
  assert.equal(kept.status(), 401, 'the API with the cookie kept from before sign-out');
  await shot(page, 'signin');
  await axeCheck(page, 'the sign-in page');
  assert.deepEqual(await cspViolations(page), [], 'CSP violations');
  await ctx.close();
}

async function rolloutScenario() {
  // A link to an app survives the sign-in it leads to.
  const linked = await newContext();
  const first = await linked.newPage();
  watch(first);
  await first.goto(`${base}/dashboard#app=kiosk`);
  assert.equal(new URL(first.url()).pathname, '/dashboard/signin', 'an anonymous visit goes to the sign-in page');
  await first.getByLabel('Stats token').fill(token);
  await Promise.all([first.waitForURL('**/dashboard#app=kiosk'), first.getByRole('button', { name: 'Sign in' }).press('Enter')]);
  await waitReady(first);
  assert.equal((await first.textContent('h1')).trim(), 'kiosk', 'the app a link named, after signing in');
  await linked.close();

  const ctx = await newContext();
  const page = await ctx.newPage();
  watch(page);
  await signIn(page, token);
  await checkDashboard(page);
  assert.deepEqual(await cspViolations(page), [], 'CSP violations');
  await axeCheck(page, 'the dashboard with rollouts');
  await shot(page, 'rollout');

  // Switching apps while the one left behind still loads: its late
  // answers are not drawn under the app chosen since.
  await page.route('**/api/apps/shop**', async (route) => {
    await new Promise((r) => setTimeout(r, 1500));
    await route.continue().catch(() => {});
  });
  const menu = page.getByLabel('App', { exact: true });
  await menu.selectOption('kiosk');
  await waitReady(page);
  await menu.selectOption('shop');
  await menu.selectOption('kiosk');
  await waitReady(page);
  await page.waitForTimeout(2000); // shop's answers arrive meanwhile
  assert.equal((await page.textContent('h1')).trim(), 'kiosk');
  assert.equal((await page.textContent('#channels')).trim(), 'No channel is published yet.', 'channels after switching back to kiosk');
  assert.equal((await page.textContent('#history')).trim(), '', 'history after switching back to kiosk');
  assert.equal(await page.getAttribute('#chart', 'data-points'), '1', 'kiosk has one hour of adoption');
  // One bucket alone spans a bucket either side, not years.
  assert.equal(await page.getAttribute('#chart', 'data-span'), String(2 * 3600), 'the time axis of one hourly bucket');
  // A changed link picks the app it names.
  await page.unroute('**/api/apps/shop**');
  await page.evaluate(() => { location.hash = 'app=shop'; });
  await page.waitForFunction(() => document.querySelector('h1').textContent.trim() === 'shop');
  await waitReady(page);
  assert.equal(await page.inputValue('#app'), 'shop', 'the menu follows the link');
  await ctx.close();
}

// A tracker with no app: a sentence, no empty menu or sections.
async function emptyScenario() {
  const ctx = await newContext();
  const page = await ctx.newPage();
  watch(page);
  await signIn(page, token);
  await waitReady(page);
  assert.equal((await page.textContent('#status')).trim(), 'No app is published on this tracker yet.');
  assert.equal(await page.isVisible('#app'), false, 'the app menu with no app');
  assert.equal(await page.locator('main section:visible').count(), 0, 'sections with no app');
  await axeCheck(page, 'the dashboard with no app');
  await shot(page, 'empty');
  await ctx.close();
}

const scenarios = { tracker: trackerScenario, rollout: rolloutScenario, empty: emptyScenario };
try {
  if (!scenarios[scenario]) throw new Error(`unknown scenario ${scenario}; use ${Object.keys(scenarios).join(' or ')}`);
  await scenarios[scenario]();
  assert.deepEqual(problems, [], 'console errors, page errors, CSP violations or outside requests');
  console.log(`${scenario}: ok`);
} finally {
  await browser.close();
}
