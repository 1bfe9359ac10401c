// LiveUpdate against a local HTTP server that answers the seed's tracker API
// and serves a CDN layout, built from the shared vectors, with the Node
// stand-in for the updater plugin.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { createServer } from 'node:http';
import { after, before, beforeEach, describe, test } from 'node:test';
import { DeviceState, LiveUpdate, MemoryStorage, TYPE_HALT, TYPE_LATEST, inCohort } from '../dist/index.js';
import { alice, endlessGzip, envelope, seed, vectors } from './helpers.mjs';
import { NodeUpdater } from './node-updater.mjs';

const byName = Object.fromEntries(vectors.map((v) => [v.name, v]));
const valid = byName.valid;
const bundleBytes = Buffer.from(valid.bundle, 'base64');
const { build: ref, ...latestPayload } = JSON.parse(Buffer.from(JSON.parse(valid.latest).payload, 'base64'));

// What the server serves; tests change it.
let served;
const ENDLESS = Symbol('an endless gzip-encoded body');
let endless; // resolves when the client has gone away from an endless body
const TRICKLE = Symbol('a body that starts and never ends');

/** Answers with headers and one byte, then a byte every 50 ms until the client goes away. */
function trickle(res) {
  res.writeHead(200, { 'content-type': 'application/json' });
  res.write('{');
  const timer = setInterval(() => res.write(' '), 50);
  res.on('close', () => clearInterval(timer));
}
let log; // requests seen: "GET /path?query" and POST bodies
let server;
let base;

function serve({ acl = valid.acl, latest = valid.latest, bundle = bundleBytes, offered = true, downloadStatus = 0, answer } = {}) {
  served = { acl, latest, bundle, offered, downloadStatus, answer };
}

/** A latest.json of valid's channel, signed by alice, with another sequence or build. */
const latestSeq = (sequence, build = ref) => envelope(TYPE_LATEST, JSON.stringify({ ...latestPayload, sequence, build }), alice);

before(async () => {
  server = createServer((req, res) => {
    const url = new URL(req.url, 'http://x');
    let body = '';
    req.on('data', (c) => (body += c));
    req.on('end', () => {
      log.push({ method: req.method, path: url.pathname, query: Object.fromEntries(url.searchParams), body });
      const json = (v, status = 200) => {
        res.writeHead(status, { 'content-type': 'application/json' });
        res.end(JSON.stringify(v));
      };
      switch (`${req.method} ${url.pathname}`) {
        case 'GET /build/latest': // the seed's API, with the signed envelopes
          if (served.answer) {
            // Another answer: [status, body, content type].
            const [status, text, type = 'application/json'] = served.answer;
            res.writeHead(status, { 'content-type': type });
            return res.end(text);
          }
          if (served.latest === ENDLESS) return (endless = endlessGzip(res));
          if (served.latest === TRICKLE) return trickle(res);
          if (!served.offered) return json({ build: null, blocked: true, error: 'blocked', message: 'build retailer-7 failed to start on this device' });
          return json({ build: { id: ref.id, build: ref.version }, latest: JSON.parse(served.latest), acl: JSON.parse(served.acl) });
        case 'GET /build/download': // the tracker redirects to the CDN
          if (served.downloadStatus) return json({ error: 'unavailable' }, served.downloadStatus);
          res.writeHead(302, { location: `/cdn/${ref.bundle}` });
          return res.end();
        case 'GET /build/download/complete':
          return json({ ok: true });
        case `POST /capgo/${ref.id.split('-')[0]}/stats`:
          return json({ status: 'ok' });
        case 'GET /cdn/acl.json':
          return res.end(served.acl);
        case `GET /cdn/apps/retailer/channels/production/latest.json`:
          if (served.latest === ENDLESS) return (endless = endlessGzip(res));
          if (served.latest === TRICKLE) return trickle(res);
          return res.end(served.latest);
        case `GET /cdn/${ref.bundle}`:
          return res.end(served.bundle);
      }
      json({ error: 'not found' }, 404);
    });
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${server.address().port}`;
});

after(() => server.close());

beforeEach(() => {
  serve();
  log = [];
});

/** A LiveUpdate on the test server, recording its events. */
function liveUpdate({ updater = new NodeUpdater(), storage = new MemoryStorage(), mode = 'tracker', vector = valid, ...opts } = {}) {
  const events = [];
  const app = { listener: null, removed: false };
  const lu = new LiveUpdate({
    app: vector.expect.app,
    channel: vector.expect.channel,
    trust: { roots: vector.root_keys, threshold: vector.threshold },
    updater,
    storage,
    ...(mode === 'tracker' ? { tracker: base } : { cdn: `${base}/cdn/` }),
    onAppStateChange: (l) => {
      app.listener = l;
      return { remove: () => (app.removed = true) };
    },
    onEvent: (e) => events.push(e),
    now: () => new Date(vector.expect.now),
    ...opts,
  });
  return { lu, updater, storage, events, app, types: () => events.map((e) => e.type) };
}

async function waitFor(cond, what) {
  for (let i = 0; i < 200 && !cond(); i++) await new Promise((r) => setTimeout(r, 5));
  assert.ok(cond(), `timed out waiting for ${what}`);
}

const requests = (path) => log.filter((r) => r.path === path);

const downloads = (updater) => updater.methods.filter((m) => m === 'download').length;

/** A clock for the backoff that starts at valid's time and only moves when told. */
function clock() {
  let t = Date.parse(valid.expect.now);
  return { now: () => new Date(t), advance: (minutes) => (t += minutes * 60_000) };
}

for (const [mode, rule] of [['cdn', 'too_large'], ['tracker', 'malformed']]) {
  test(`an answer that decodes without end is cut where the verifier stops reading (${mode})`, { timeout: 20_000 }, async () => {
    serve({ latest: ENDLESS });
    const { lu, updater } = liveUpdate({ mode });
    const r = await lu.check();
    assert.equal(r.type, 'rejected', JSON.stringify(r));
    assert.equal(r.rule, rule);
    await endless; // the client closed the connection
    assert.equal(downloads(updater), 0);
  });
}

for (const mode of ['cdn', 'tracker']) {
  test(`an answer whose body trickles in fails at the timeout, and the next check runs (${mode})`, { timeout: 20_000 }, async () => {
    serve({ latest: TRICKLE });
    const { lu } = liveUpdate({ mode, timeoutMs: 300 });
    const r = await lu.check();
    assert.equal(r.type, 'error', JSON.stringify(r));
    assert.match(r.message, /GET http:\/\/127\.0\.0\.1:\d+\/\S+: no whole answer within 300 ms/);
    serve();
    assert.equal((await lu.check()).type, 'downloaded');
  });
}

describe('an update through the tracker', () => {
  test('is verified, downloaded with its checksum, reported, and applied in the background', async () => {
    const { lu, updater, storage, types, app } = liveUpdate();
    const result = await lu.start();

    assert.equal(result.type, 'downloaded');
    assert.deepEqual(types(), ['downloading', 'downloaded']);
    assert.equal(updater.methods[0], 'notifyAppReady', 'notifyAppReady comes first');
    const [, dl] = updater.calls.find(([m]) => m === 'download');
    assert.deepEqual(dl, {
      url: `${base}/build/download?id=retailer-7&device=${updater.deviceId}`,
      version: '1.4.2',
      checksum: ref.sha256,
    });
    assert.deepEqual(requests('/build/latest')[0].query, { app: 'retailer', device: updater.deviceId, channel: 'production', native: '1.0.0' });
    assert.equal(requests(`/cdn/${ref.bundle}`).length, 1, 'the stand-in followed the redirect');
    assert.deepEqual(requests('/build/download/complete')[0].query, { id: 'retailer-7', device: updater.deviceId });
    const bundleID = updater.calls.find(([m]) => m === 'next')[1].id;
    assert.ok(!updater.methods.includes('set'), 'no switch while the app is in use');

    // The app goes to the background: switch.
    app.listener({ isActive: false });
    await waitFor(() => updater.methods.includes('set'), 'set()');
    assert.deepEqual(updater.calls.find(([m]) => m === 'set')[1], { id: bundleID });
    assert.equal(updater.currentId, bundleID);

    // The app reloads into the new bundle: a new LiveUpdate on the same storage.
    const again = liveUpdate({ updater, storage });
    const r2 = await again.lu.start();
    assert.deepEqual(again.types(), ['applied', 'up_to_date']);
    assert.equal(r2.type, 'up_to_date');
    assert.equal(updater.methods.filter((m) => m === 'download').length, 1);
    await lu.stop();
    assert.ok(app.removed);
  });

  test('applyImmediately switches right after the download', async () => {
    const { lu, updater, types } = liveUpdate({ applyImmediately: true });
    await lu.start();
    assert.deepEqual(types(), ['downloading', 'downloaded', 'applying']);
    assert.ok(updater.methods.includes('set'));
  });

  test('a download that finishes in the background is applied at once', async () => {
    const { lu, updater, app } = liveUpdate();
    await lu.start();
    app.listener({ isActive: false }); // applies the pending one
    await waitFor(() => updater.methods.includes('set'), 'set()');
    assert.equal(updater.methods.filter((m) => m === 'set').length, 1);
  });

  test('checks again when the app becomes active, without downloading twice', async () => {
    const { lu, updater, app, types } = liveUpdate();
    await lu.start();
    app.listener({ isActive: true });
    await waitFor(() => types().length === 3, 'the second check');
    assert.equal(types()[2], 'downloaded');
    assert.equal(requests('/build/latest').length, 2);
    assert.equal(updater.methods.filter((m) => m === 'download').length, 1);
  });

  test('a build the tracker blocks on this device is skipped, as one this device remembers', async () => {
    serve({ offered: false });
    const { lu, updater, types } = liveUpdate();
    const r = await lu.start();
    assert.equal(r.type, 'skipped');
    assert.match(r.message, /failed to start on this device/);
    assert.deepEqual(types(), ['skipped']);
    assert.ok(!updater.methods.includes('download'));
  });

  test('the running version is up to date', async () => {
    const updater = new NodeUpdater();
    updater.bundles.get('builtin').version = '1.4.2';
    const { lu, types } = liveUpdate({ updater });
    await lu.start();
    assert.deepEqual(types(), ['up_to_date']);
    assert.ok(!updater.methods.includes('download'));
  });

  test('a build for a newer native app is skipped', async () => {
    const updater = new NodeUpdater({ native: '0.9.3' });
    const { lu, types } = liveUpdate({ updater });
    await lu.start();
    assert.deepEqual(types(), ['skipped']);
    assert.ok(!updater.methods.includes('download'));
  });

  test('a tracker error is reported and retried at the next check', async () => {
    const broken = liveUpdate({ tracker: 'http://127.0.0.1:1' });
    assert.equal((await broken.lu.start()).type, 'error');
  });
});

describe("the tracker's 404s and other answers, by its error code", () => {
  const check = async (answer, opts) => {
    serve({ answer });
    const { lu, updater, events } = liveUpdate(opts);
    const r = await lu.start();
    assert.deepEqual(events, [r]);
    assert.ok(!updater.methods.includes('download'));
    return r;
  };

  test('not_found: nothing published', async () => {
    const message = 'no build is published on channel "production" of app "retailer"; check the app and channel names, or publish with `deploy upload`';
    const r = await check([404, JSON.stringify({ error: 'not_found', message })]);
    assert.equal(r.type, 'no_update');
    assert.equal(r.message, `nothing published for retailer/production: ${message}`);
  });

  test('not_servable: the store\'s manifest fails verification, with the rule the tracker names', async () => {
    const message = 'the manifest of channel "production" of app "retailer" fails verification (expired); the tracker serves only signed manifests that verify against its pinned root key, so publish a valid one';
    const r = await check([404, JSON.stringify({ error: 'not_servable', message, rule: 'expired' })]);
    assert.equal(r.type, 'rejected');
    assert.equal(r.rule, 'expired');
    const unknown = await check([404, JSON.stringify({ error: 'not_servable', message, rule: 'made_up' })]);
    assert.equal(unknown.rule, undefined, 'a rule no verifier has is left out');
    assert.equal(r.message, `the tracker refuses to serve the manifest: ${message}`);
    const none = await check([404, JSON.stringify({ error: 'not_servable', message: 'the store has no acl.json yet; an administrator runs `deploy init` first' })]);
    assert.equal(none.type, 'rejected');
    assert.equal(none.rule, undefined);
    assert.match(none.message, /no acl\.json yet/);
    assert.equal(requests('/capgo/retailer/stats').length, 0, 'the tracker knows: no verify_fail report');
  });

  test('a 404 that is not the tracker\'s JSON: not a deploy tracker', async () => {
    for (const [body, type] of [['<html>Not Found</html>', 'text/html'], ['{"error":"not found"}', 'application/json'], ['', 'text/plain']]) {
      const r = await check([404, body, type]);
      assert.equal(r.type, 'error', body);
      assert.match(r.message, new RegExp(`^${base}/build/latest\\?.*: HTTP 404, not a deploy tracker: check the tracker URL`));
    }
  });

  test('a route the tracker does not have: a wrong tracker URL', async () => {
    const message = 'no such endpoint /api/build/latest; docs/api.md lists the tracker\'s routes';
    const r = await check([404, JSON.stringify({ error: 'no_route', message })]);
    assert.equal(r.type, 'error');
    assert.match(r.message, /not a deploy tracker: check the tracker URL .*no such endpoint/);
  });

  // The same situation gives the same event through the tracker as from the CDN.
  test('no build for this native version: skipped, as from the CDN', async () => {
    for (const mode of ['tracker', 'cdn']) {
      serve(); // a tracker that answers as the real one does for native 0.9.3
      if (mode === 'tracker') {
        served.answer = [200, JSON.stringify({ build: null, blocked: true, error: 'no_compatible_build', message: 'no build of channel production runs on native version "0.9.3"; update the app from its store' })];
      }
      const { lu, types, events } = liveUpdate({ mode, updater: new NodeUpdater({ native: '0.9.3' }) });
      await lu.start();
      assert.deepEqual(types(), ['skipped'], mode);
      assert.match(events[0].message, /update the app from its store/, mode);
    }
  });

  test('a captive portal\'s page: rejected as malformed, as from the CDN', async () => {
    const portal = '<!doctype html><html><body>Sign in to the Wi-Fi</body></html>';
    const viaTracker = await check([200, portal, 'text/html']);
    assert.equal(viaTracker.type, 'rejected');
    assert.equal(viaTracker.rule, 'malformed');
    assert.match(viaTracker.message, /not JSON/);
    serve({ latest: portal, acl: portal });
    const { lu } = liveUpdate({ mode: 'cdn' });
    const viaCDN = await lu.start();
    assert.equal(viaCDN.type, 'rejected');
    assert.equal(viaCDN.rule, 'malformed');
    // JSON that is not an object is no answer of the tracker either.
    for (const body of ['[]', '"ok"', '42']) assert.equal((await check([200, body])).rule, 'malformed', body);
  });
});

test('an update straight from the CDN', async () => {
  const { lu, updater, types } = liveUpdate({ mode: 'cdn' });
  await lu.start();
  assert.deepEqual(types(), ['downloading', 'downloaded']);
  const [, dl] = updater.calls.find(([m]) => m === 'download');
  assert.deepEqual(dl, { url: `${base}/cdn/${ref.bundle}`, version: '1.4.2', checksum: ref.sha256 });
  assert.ok(!log.some((r) => r.path.startsWith('/build/')), 'no tracker in CDN mode');
});

describe('a manifest that fails verification is skipped: no download, no switch', () => {
  // Verification rules are pinned by vectors.test.mjs; here, one vector per
  // rule and kind of pointer shows that the flow stops on any of them.
  const flows = vectors.filter((v) => !v.kind && !v.files_manifest && !v.files_stored && !v.files_patch && v.verdict !== 'ok' && v.verdict !== 'bundle_mismatch' && !/^(strict|envelope|acl|ed25519|select)_/.test(v.name));
  for (const v of flows) {
    for (const mode of ['tracker', 'cdn']) {
      // The CDN layout of the test server is for retailer/production only.
      if (mode === 'cdn' && (v.expect.app !== 'retailer' || v.expect.channel !== 'production')) continue;
      // Envelopes that are not JSON cannot be embedded in the tracker's answer.
      if (mode === 'tracker' && v.name === 'malformed') continue;
      test(`${v.name} (${mode}): ${v.verdict}`, async () => {
        serve({ acl: v.acl, latest: v.latest });
        const storage = new MemoryStorage();
        const state = new DeviceState(storage, v.expect.app, v.expect.channel);
        await state.saveRollback({ aclVersion: v.expect.min_acl_version, sequence: v.expect.min_sequence });
        const { lu, updater, events } = liveUpdate({ vector: v, mode, storage });
        const r = await lu.start();
        assert.equal(r.type, 'rejected');
        assert.equal(r.rule, v.verdict);
        assert.deepEqual(events.map((e) => e.type), ['rejected']);
        assert.deepEqual(updater.methods.filter((m) => ['download', 'set', 'next'].includes(m)), []);
        assert.deepEqual(await state.rollback(), { aclVersion: v.expect.min_acl_version, sequence: v.expect.min_sequence }, 'state unchanged');
        if (mode === 'tracker') {
          const [report] = requests(`/capgo/${v.expect.app}/stats`);
          assert.ok(report, 'the rejection is reported to the tracker');
          const [ev] = JSON.parse(report.body);
          assert.equal(ev.action, 'verify_fail');
          assert.equal(ev.metadata.rule, v.verdict);
          assert.equal(ev.device_id, updater.deviceId);
          assert.equal(ev.version_name, '1.4.2'); // as offered
          assert.equal(ev.old_version_name, 'builtin');
        }
      });
    }
  }

  test('a tracker answer without envelopes', async () => {
    const { lu, updater } = liveUpdate();
    served.latest = 'null';
    served.acl = 'null';
    const r = await lu.start();
    assert.equal(r.type, 'rejected');
    assert.equal(r.rule, 'malformed');
    assert.ok(!updater.methods.includes('download'));
  });
});

describe('a failed download is retried later, with a backoff', () => {
  const tampered = () => serve({ bundle: Buffer.concat([Buffer.from('tampered '), bundleBytes]) });

  test('a transient failure, then success at a check after the backoff', async () => {
    serve({ downloadStatus: 503 }); // the tracker is overloaded for a moment
    const c = clock();
    const { lu, updater, storage, types, app } = liveUpdate({ now: c.now });
    const r = await lu.start();
    assert.equal(r.type, 'download_failed');
    assert.match(r.message, /attempt 1 of 6\b.*HTTP 503.*next try after 2026-11-01T13:01:00\.000Z/);
    const state = new DeviceState(storage, 'retailer', 'production');
    assert.deepEqual(await state.failed(), [], 'not failed for good');
    serve();

    // Within the backoff nothing is downloaded, not even after a restart.
    c.advance(0.5);
    app.listener({ isActive: true });
    await waitFor(() => types().length === 3, 'the second check');
    assert.deepEqual(types(), ['downloading', 'download_failed', 'skipped']);
    const restarted = await liveUpdate({ updater, storage, now: c.now }).lu.start();
    assert.equal(restarted.type, 'skipped');
    assert.match(restarted.message, /failed to download \(1 of 6 attempts\); next try after 2026-11-01T13:01:00\.000Z/);
    assert.equal(downloads(updater), 1);

    // After it, the build is downloaded and the failures forgotten.
    c.advance(0.5);
    const again = liveUpdate({ updater, storage, now: c.now });
    assert.equal((await again.lu.start()).type, 'downloaded');
    assert.deepEqual(again.types(), ['downloading', 'downloaded']);
    assert.equal(downloads(updater), 2);
    assert.equal(await state.downloadFailures(), null);
  });

  test('gives up after 6 failed downloads, until another build is published', async () => {
    tampered(); // a bad CDN object that stays bad
    const c = clock();
    const { lu, updater } = liveUpdate({ now: c.now });
    const waits = [1, 4, 16, 64, 240]; // minutes
    let r = await lu.start();
    for (let n = 1; ; n++) {
      assert.equal(r.type, 'download_failed');
      assert.match(r.message, new RegExp(`attempt ${n} of 6\\b.*checksum_fail`));
      if (n === 6) break;
      c.advance(waits[n - 1] - 1);
      assert.equal((await lu.check()).type, 'skipped', `one minute before retry ${n}`);
      c.advance(1);
      r = await lu.check();
    }
    assert.match(r.message, /giving up until another build is published/);
    assert.equal(downloads(updater), 6);

    // Not even a day later, with the object fixed.
    serve();
    c.advance(24 * 60);
    r = await lu.check();
    assert.equal(r.type, 'skipped');
    assert.match(r.message, /retailer-7 failed to download \(6 of 6 attempts\); waiting for another build/);
    assert.equal(downloads(updater), 6);

    // Another build is downloaded.
    serve({ latest: latestSeq(6, { ...ref, id: 'retailer-8', number: 8, version: '1.4.3' }) });
    r = await lu.check();
    assert.equal(r.type, 'downloaded');
    assert.equal(r.build, 'retailer-8');
    assert.equal(downloads(updater), 7);
  });

  test('a clock turned back does not delay the retry', async () => {
    tampered();
    const c = clock();
    const { lu, updater } = liveUpdate({ now: c.now });
    assert.equal((await lu.start()).type, 'download_failed');
    serve();
    c.advance(-24 * 60);
    assert.equal((await lu.check()).type, 'downloaded');
    assert.equal(downloads(updater), 2);
  });
});

describe('a build that failed to start is never downloaded again', () => {
  test('after set() failed', async () => {
    const updater = new NodeUpdater();
    updater.set = async () => {
      throw new Error('set failed');
    };
    const c = clock();
    const { lu, storage, types } = liveUpdate({ updater, applyImmediately: true, now: c.now });
    await lu.start();
    assert.deepEqual(types(), ['downloading', 'downloaded', 'applying', 'error']);
    assert.deepEqual(await new DeviceState(storage, 'retailer', 'production').failed(), ['retailer-7']);
    // Not at the next check, nor days later after a restart.
    assert.equal((await lu.check()).type, 'skipped');
    c.advance(7 * 24 * 60);
    const again = liveUpdate({ updater, storage, now: c.now });
    const r = await again.lu.start();
    assert.equal(r.type, 'skipped');
    assert.match(r.message, /failed to start on this device/);
    assert.equal(downloads(updater), 1);
  });

  test('after the plugin rolled it back', async () => {
    const { lu, updater, storage } = liveUpdate({ applyImmediately: true });
    await lu.start();
    assert.ok(updater.methods.includes('set'));
    updater.rollBack(); // the new bundle never called notifyAppReady
    const again = liveUpdate({ updater, storage });
    await again.lu.start();
    assert.deepEqual(again.types(), ['rolled_back', 'skipped']);
    assert.equal(updater.methods.filter((m) => m === 'download').length, 1);
  });

  test('when current() reports the new bundle as errored', async () => {
    const { lu, updater, storage } = liveUpdate({ applyImmediately: true });
    await lu.start();
    updater.bundles.get(updater.currentId).status = 'error';
    updater.notifyAppReady = async () => {}; // a bundle whose start-up failed
    const again = liveUpdate({ updater, storage });
    await again.lu.start();
    assert.deepEqual(again.types(), ['rolled_back', 'up_to_date']); // the plugin is about to go back
    assert.deepEqual(await new DeviceState(storage, 'retailer', 'production').failed(), ['retailer-7']);
    assert.equal(updater.methods.filter((m) => m === 'download').length, 1);
  });

  test('after the plugin switched to it by itself and rolled it back', async () => {
    const { lu, updater, storage } = liveUpdate();
    await lu.start(); // downloaded and armed with next(); the app is killed before this code sees it go to the background
    updater.restart(); // the plugin applies next()...
    updater.rollBack(); // ...and the bundle never calls notifyAppReady
    const again = liveUpdate({ updater, storage });
    await again.lu.start();
    assert.deepEqual(again.types(), ['rolled_back', 'skipped']);
    assert.equal(updater.methods.filter((m) => m === 'download').length, 1);
  });

  test('but one switched to by the plugin and running is applied', async () => {
    const { lu, updater, storage } = liveUpdate();
    await lu.start();
    updater.restart();
    const again = liveUpdate({ updater, storage });
    await again.lu.start();
    assert.deepEqual(again.types(), ['applied', 'up_to_date']);
  });

  test('and one downloaded but never armed is downloaded again', async () => {
    const updater = new NodeUpdater();
    updater.next = async () => {
      throw new Error('next failed');
    };
    const { lu, storage, types } = liveUpdate({ updater });
    await lu.start();
    assert.deepEqual(types(), ['downloading', 'error', 'downloaded']);
    const again = liveUpdate({ updater, storage });
    await again.lu.start();
    assert.deepEqual(again.types(), ['downloading', 'error', 'downloaded']);
  });
});

describe('anti-rollback state', () => {
  test('is persisted after a verified manifest and refuses older ones after a restart', async () => {
    const storage = new MemoryStorage();
    serve({ acl: byName.wildcard_grant.acl, latest: latestSeq(6) }); // ACL version 3
    await liveUpdate({ storage }).lu.start();
    const state = new DeviceState(storage, 'retailer', 'production');
    assert.deepEqual(await state.rollback(), { aclVersion: 3, sequence: 6 });
    assert.equal(storage.data.get('deploy:retailer/production/rollback'), '{"aclVersion":3,"sequence":6}', 'per channel');
    assert.equal(storage.data.get('deploy:retailer/acl'), '3', 'the ACL version, per app');
    assert.ok([...storage.data.keys()].every((k) => k.startsWith('deploy:retailer/')));

    serve({ acl: byName.wildcard_grant.acl, latest: latestSeq(5) }); // a replay of an older latest.json
    const r1 = await liveUpdate({ storage }).lu.start();
    assert.equal(r1.rule, 'rollback');

    serve({ acl: valid.acl, latest: latestSeq(6) }); // an older ACL (version 2)
    const r2 = await liveUpdate({ storage }).lu.start();
    assert.equal(r2.rule, 'acl_rollback');
    assert.deepEqual(await state.rollback(), { aclVersion: 3, sequence: 6 });
  });

  test('is not changed by a manifest that fails verification', async () => {
    const storage = new MemoryStorage();
    await liveUpdate({ storage }).lu.start();
    const state = new DeviceState(storage, 'retailer', 'production');
    assert.deepEqual(await state.rollback(), { aclVersion: 2, sequence: 5 });
    const forged = JSON.parse(latestSeq(9));
    forged.signatures = JSON.parse(valid.latest).signatures; // signature of sequence 5
    serve({ latest: JSON.stringify(forged) });
    const r = await liveUpdate({ storage }).lu.start();
    assert.equal(r.rule, 'bad_signature');
    assert.deepEqual(await state.rollback(), { aclVersion: 2, sequence: 5 });
  });
});

test('the options are checked', () => {
  const trust = { roots: valid.root_keys };
  const updater = new NodeUpdater();
  assert.throws(() => new LiveUpdate({ app: 'retailer', trust, updater }), /tracker URL or a CDN URL/);
  assert.throws(() => new LiveUpdate({ app: 'Retailer!', trust, updater, tracker: base }), /invalid app name/);
  assert.throws(() => new LiveUpdate({ app: 'retailer', trust: { roots: [] }, updater, tracker: base }), /root public key/);
  assert.throws(() => new LiveUpdate({ app: 'retailer', trust: { roots: ['ed25519:abc'] }, updater, tracker: base }), /32 bytes/);
});

test('the options are checked with messages that say what to fix', () => {
  const trust = { roots: valid.root_keys };
  const opts = { app: 'retailer', trust, updater: new NodeUpdater(), tracker: base, storage: new MemoryStorage() };
  // Channel names follow the pattern of app names; the tracker answers 400 to any other on every check.
  assert.throws(() => new LiveUpdate({ ...opts, channel: 'Production' }), /invalid channel name "Production".*use "production"/);
  assert.throws(() => new LiveUpdate({ ...opts, channel: 'beta/1' }), /invalid channel name "beta\/1"/);
  assert.throws(() => new LiveUpdate({ ...opts, channel: '' }), /invalid channel name ""/);
  new LiveUpdate({ ...opts, channel: 'beta-2.x_y' });
  assert.throws(() => new LiveUpdate({ ...opts, app: undefined }), /invalid app name undefined/);
  // A key missing from environment.prod.ts.
  assert.throws(() => new LiveUpdate({ ...opts, trust: { roots: [valid.root_keys[0], undefined] } }), (e) => {
    assert.doesNotMatch(e.message, /Cannot read properties/);
    assert.match(e.message, /^trust\.roots\[1\]: public key is undefined, not a string "ed25519:\.\.\."/);
    assert.match(e.message, /deploy keys show root=1/);
    return true;
  });
  assert.throws(() => new LiveUpdate({ ...opts, trust: {} }), /trust\.roots/);
  assert.throws(() => new LiveUpdate({ ...opts, trust: undefined }), /trust\.roots/);
  // The root key is printed by `deploy keys show root=1`; `deploy keys show` prints the user's key.
  const bare = valid.root_keys[0].slice('ed25519:'.length);
  assert.throws(() => new LiveUpdate({ ...opts, trust: { roots: [bare] } }), /^Error: trust\.roots\[0\]: public key ".*" does not start with "ed25519:"; print the root key with `deploy keys show root=1`/);
});

test('storage is required: in memory, a rolled-back build would be downloaded again at every start', () => {
  const trust = { roots: valid.root_keys };
  assert.throws(() => new LiveUpdate({ app: 'retailer', trust, updater: new NodeUpdater(), tracker: base }), /LiveUpdate needs storage.*@capacitor\/preferences.*MemoryStorage/s);
  new LiveUpdate({ app: 'retailer', trust, updater: new NodeUpdater(), tracker: base, storage: new MemoryStorage() });
});

describe('setChannel', () => {
  /** valid's pointer, moved to channel beta (alice may upload to every channel of retailer). */
  const betaLatest = (sequence = 1, build = ref) => envelope(TYPE_LATEST, JSON.stringify({ ...latestPayload, channel: 'beta', sequence, build }), alice);

  test('later checks follow the channel set, across restarts, until set back', async () => {
    const { lu, storage, events } = liveUpdate();
    assert.equal(await lu.getChannel(), 'production');
    await lu.setChannel('beta');
    assert.equal(await lu.getChannel(), 'beta');
    serve({ latest: betaLatest() });
    const r = await lu.check();
    assert.equal(r.type, 'downloaded', JSON.stringify(events));
    assert.equal(requests('/build/latest')[0].query.channel, 'beta');

    // A restart: the constructor still says production, the storage says beta.
    const again = liveUpdate({ storage, mode: 'cdn' });
    assert.equal(await again.lu.getChannel(), 'beta');
    await again.lu.check();
    assert.ok(log.some((q) => q.path === '/cdn/apps/retailer/channels/beta/latest.json'));

    // null goes back to the constructor's channel.
    await again.lu.setChannel(null);
    assert.equal(await again.lu.getChannel(), 'production');
    assert.equal(await liveUpdate({ storage }).lu.getChannel(), 'production');
  });

  test('refuses an invalid name and keeps the channel', async () => {
    const { lu } = liveUpdate();
    await assert.rejects(lu.setChannel('Beta'), /invalid channel name "Beta".*use "beta"/);
    await assert.rejects(lu.setChannel(undefined), /invalid channel name undefined/);
    assert.equal(await lu.getChannel(), 'production');
  });

  test('each channel has its own anti-rollback state', async () => {
    const storage = new MemoryStorage();
    await liveUpdate({ storage }).lu.start(); // production, sequence 5
    const { lu } = liveUpdate({ storage });
    await lu.setChannel('beta');
    serve({ latest: betaLatest(1) });
    assert.equal((await lu.check()).type, 'downloaded');
    assert.deepEqual(await new DeviceState(storage, 'retailer', 'beta').rollback(), { aclVersion: 2, sequence: 1 });
    assert.deepEqual(await new DeviceState(storage, 'retailer', 'production').rollback(), { aclVersion: 2, sequence: 5 });
  });

  test('an older ACL is refused on a channel the device never used', async () => {
    const storage = new MemoryStorage();
    serve({ acl: byName.wildcard_grant.acl, latest: latestSeq(6) }); // ACL version 3, on production
    await liveUpdate({ storage }).lu.start();
    const { lu } = liveUpdate({ storage });
    await lu.setChannel('beta');
    serve({ acl: valid.acl, latest: betaLatest(1) }); // ACL version 2: it may still grant a key version 3 revoked
    const r = await lu.check();
    assert.equal(r.rule, 'acl_rollback', JSON.stringify(r));
    assert.equal(storage.data.get('deploy:retailer/acl'), '3');
  });

  test('state an older client kept per channel is read', async () => {
    const storage = new MemoryStorage();
    await storage.set('deploy:retailer/production/failed', JSON.stringify(['retailer-7']));
    const state = new DeviceState(storage, 'retailer', 'production');
    assert.deepEqual(await state.failed(), ['retailer-7']);
    assert.deepEqual(await new DeviceState(storage, 'retailer', 'beta').failed(), []);
  });

  test('a build switched to before the channel changed and rolled back is not tried again on the new channel', async () => {
    const { lu, updater, storage } = liveUpdate();
    await lu.start(); // production's retailer-7, armed with next()
    await lu.setChannel('beta');
    updater.restart(); // the plugin applies next()...
    updater.rollBack(); // ...and the bundle never calls notifyAppReady
    serve({ latest: betaLatest() }); // beta offers the same build
    const again = liveUpdate({ updater, storage });
    await again.lu.start();
    assert.deepEqual(again.types(), ['rolled_back', 'skipped']);
    assert.equal(downloads(updater), 1);
  });
});

describe('staged rollout and halt, straight from the CDN', () => {
  // The stable build is an older one; valid's build is the candidate.
  const stable = { ...ref, id: 'retailer-6', number: 6, version: '1.4.1' };
  const rollout = (percent) => envelope(TYPE_LATEST, JSON.stringify({ ...latestPayload, sequence: 20, build: stable, candidate: { build: ref, percent, rollout: 'r1' } }), alice);
  const offered = (events) => events.find((e) => e.type === 'downloading')?.build;

  test('a device gets the candidate exactly when its cohort says so', async () => {
    for (const percent of [0, 30, 100]) {
      serve({ latest: rollout(percent) });
      const updater = new NodeUpdater();
      const { lu, events } = liveUpdate({ mode: 'cdn', updater });
      await lu.start();
      const want = (await inCohort('retailer', 'production', { rollout: 'r1', percent }, updater.deviceId)) ? ref.id : stable.id;
      assert.equal(offered(events), want, `at ${percent} %`);
    }
  });

  test('a halt written by the tracker takes the candidate away', async () => {
    const pointer = rollout(100);
    const halt = {
      app: 'retailer',
      channel: 'production',
      sequence: 21,
      issued: latestPayload.issued,
      reason: '40 of 500 devices reported a failure',
      pointer: JSON.parse(pointer),
      previous: { sequence: 20, sha256: createHash('sha256').update(pointer).digest('hex') },
    };
    serve({ latest: envelope(TYPE_HALT, JSON.stringify(halt), seed(6)) });
    const { lu, events } = liveUpdate({ mode: 'cdn' });
    await lu.start();
    assert.equal(offered(events), stable.id);
  });
});
