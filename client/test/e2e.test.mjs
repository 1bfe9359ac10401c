// End to end: the deploy CLI publishes a web build to a local store, `deploy
// serve` answers devices, and LiveUpdate (with the Node stand-in for the
// plugin) verifies, downloads and reports it; a device on the store served
// as a CDN gets the next build's file manifest as the patch deploy upload
// wrote, and a device on a tracker with that CDN gets it as the patch the
// tracker makes. Runs only when DEPLOY_BIN names the deploy binary (the CI
// script sets it).
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join, normalize } from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { gunzipSync } from 'node:zlib';
import { DeviceState, LiveUpdate, MemoryStorage } from '../dist/index.js';
import { NodeUpdater } from './node-updater.mjs';

// ---- The deploy CLI as this test uses it: adjust here when the CLI changes. ----
const APP = 'demo';
const CLI = {
  // Publishes dir to the store; bootstraps a local root key, user key and ACL on a fresh store. Prints JSON with "sha256".
  upload: ({ www, store }) => ['upload', `app=${APP}`, `dir=${www}`, `store=${store}`, '--json'],
  // Prints the root public key, "ed25519:...".
  rootKey: ({ store }) => ['keys', 'show', 'root=1', `store=${store}`],
  // Runs the tracker; it prints a line containing "listening on http://host:port".
  // With cdn, it serves file manifests (GET /build/files) whose files are there; cacheTTL: how long it keeps a verified latest.json.
  serve: ({ store, token, db, cdn, cacheTTL }) => [
    'serve', `store=${store}`, 'addr=127.0.0.1:0', `stats_token=${token}`, `db=${db}`,
    ...(cdn ? [`cdn=${cdn}`] : []), ...(cacheTTL ? [`cache_ttl=${cacheTTL}`] : []),
  ],
  listening: /listening on (http:\/\/[^\s)]+)/,
  // The tracker's stats for the app: GET with "Authorization: Bearer <token>".
  statsPath: `/api/stats?app=${APP}`,
};

/** Does some build of the tracker's stats count a completed download? */
function someBuildCompleted(stats) {
  return stats.builds.some((b) => b.app === APP && b.downloads_completed >= 1);
}
// ---------------------------------------------------------------------------

const bin = process.env.DEPLOY_BIN;

test('deploy upload + deploy serve + LiveUpdate', { skip: !bin && !process.env.CI && 'set DEPLOY_BIN to the deploy binary to run', timeout: 120_000 }, async (t) => {
  const tmp = await mkdtemp(join(tmpdir(), 'deploy-e2e-'));
  t.after(() => rm(tmp, { recursive: true, force: true }));
  const env = { ...process.env, HOME: join(tmp, 'home'), XDG_CONFIG_HOME: join(tmp, 'config'), XDG_DATA_HOME: join(tmp, 'data'), NO_COLOR: '1' };
  for (const k of Object.keys(env)) if (k.startsWith('DEPLOY_')) delete env[k]; // no settings from the caller
  await mkdir(env.HOME, { recursive: true });
  const storeDir = join(tmp, 'store');
  const store = `file://${storeDir}`;
  const run = async (args) => {
    try {
      return (await promisify(execFile)(bin, args, { env, timeout: 60_000 })).stdout;
    } catch (e) {
      throw new Error(`deploy ${args.join(' ')}: ${e.message}\n${e.stderr ?? ''}`);
    }
  };

  // A web build that calls notifyAppReady.
  const www = join(tmp, 'www');
  await mkdir(join(www, 'assets'), { recursive: true });
  await writeFile(join(www, 'index.html'), '<!doctype html><html><body><script src="main.js"></script></body></html>\n');
  await writeFile(join(www, 'main.js'), "import('@capgo/capacitor-updater').then(({ CapacitorUpdater }) => CapacitorUpdater.notifyAppReady());\n");
  await writeFile(join(www, 'assets', 'style.css'), 'body { margin: 0 }\n');

  const uploaded = JSON.parse(await run(CLI.upload({ www, store })));
  assert.match(uploaded.sha256, /^[0-9a-f]{64}$/);
  const rootKey = (await run(CLI.rootKey({ store }))).match(/ed25519:[A-Za-z0-9+/]+=*/)?.[0];
  assert.ok(rootKey, 'the root public key is printed');

  // The tracker.
  const token = 'e2e-stats-token';
  /** Starts deploy serve with args; resolves to its URL. */
  const startTracker = (args) => {
    const serve = spawn(bin, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    t.after(() => serve.kill('SIGTERM'));
    let output = '';
    let timer;
    return new Promise((resolve, reject) => {
      const onData = (d) => {
        output += d;
        const m = CLI.listening.exec(output);
        if (m) resolve(m[1]);
      };
      serve.stdout.on('data', onData);
      serve.stderr.on('data', onData);
      serve.on('exit', (code) => reject(new Error(`deploy serve exited with ${code}:\n${output}`)));
      timer = setTimeout(() => reject(new Error(`deploy serve did not say where it listens:\n${output}`)), 30_000);
    }).finally(() => clearTimeout(timer));
  };
  const base = await startTracker(CLI.serve({ store, token, db: join(tmp, 'events.db') }));

  // The device.
  const updater = new NodeUpdater();
  const events = [];
  const lu = new LiveUpdate({
    app: APP,
    trust: { roots: [rootKey] },
    updater,
    tracker: base,
    storage: new MemoryStorage(),
    onEvent: (e) => events.push(e),
  });
  const result = await lu.start();
  assert.equal(result.type, 'downloaded', JSON.stringify(events));
  const [, dl] = updater.calls.find(([m]) => m === 'download');
  assert.equal(dl.checksum, uploaded.sha256, 'download() gets the signed sha256');
  const bundle = [...updater.bundles.values()].find((b) => b.bytes);
  assert.equal(createHash('sha256').update(bundle.bytes).digest('hex'), uploaded.sha256);
  assert.equal(bundle.bytes.subarray(0, 2).toString(), 'PK', 'a zip');

  // The tracker counted the completed download.
  const res = await fetch(base + CLI.statsPath, { headers: { Authorization: `Bearer ${token}` } });
  assert.equal(res.status, 200);
  const stats = await res.json();
  assert.ok(someBuildCompleted(stats), `no completed download in ${JSON.stringify(stats)}`);

  // A device that pins another root key downloads nothing.
  const stranger = new NodeUpdater();
  const wrongRoot = `ed25519:${Buffer.alloc(32, 9).toString('base64')}`;
  const rejected = await new LiveUpdate({ app: APP, trust: { roots: [wrongRoot] }, updater: stranger, tracker: base, storage: new MemoryStorage() }).start();
  assert.equal(rejected.type, 'rejected');
  assert.equal(rejected.rule, 'acl_untrusted');
  assert.ok(!stranger.methods.includes('download'));

  // The tracker's 404s: a channel with nothing published, and a wrong tracker URL.
  const device = (opts) => new LiveUpdate({ app: APP, trust: { roots: [rootKey] }, updater: new NodeUpdater(), tracker: base, storage: new MemoryStorage(), ...opts });
  const unpublished = await device({ channel: 'nothing-here' }).start();
  assert.equal(unpublished.type, 'no_update', unpublished.message);
  assert.match(unpublished.message, /^nothing published for demo\/nothing-here: no build is published/);
  const wrongURL = await device({ tracker: `${base}/api` }).start();
  assert.equal(wrongURL.type, 'error', wrongURL.message);
  assert.match(wrongURL.message, /HTTP 404, not a deploy tracker: check the tracker URL/);

  // A second device start is up to date once the bundle runs.
  await lu.apply();
  const again = new LiveUpdate({ app: APP, trust: { roots: [rootKey] }, updater, tracker: base, storage: new MemoryStorage() });
  assert.equal((await again.start()).type, 'up_to_date');

  // A device on the store served as a CDN, with a plugin that takes manifests, gets the build file by file.
  /** The bytes of a file manifest in the folder store, which holds it gzip-compressed. */
  const storedManifest = async (sum) => {
    const stored = await readFile(join(storeDir, `apps/${APP}/files/manifests/${sum}.json`));
    assert.deepEqual([...stored.subarray(0, 2)], [0x1f, 0x8b], 'stored gzip-compressed');
    return gunzipSync(stored);
  };
  const cdnLog = [];
  const cdn = createServer(async (req, res) => {
    const path = decodeURIComponent(new URL(req.url, 'http://x').pathname);
    cdnLog.push(path);
    try {
      res.end(await readFile(join(storeDir, normalize(path)))); // an absolute path normalizes to one under storeDir
    } catch {
      res.writeHead(404).end();
    }
  });
  t.after(() => cdn.close());
  await new Promise((r) => cdn.listen(0, '127.0.0.1', r));
  const cdnURL = `http://127.0.0.1:${cdn.address().port}`;
  const viaCDN = new NodeUpdater({ pluginVersion: '8.51.14' });
  const storage = new MemoryStorage();
  const cdnDevice = () => new LiveUpdate({ app: APP, trust: { roots: [rootKey] }, updater: viaCDN, cdn: cdnURL, storage, applyImmediately: true, onEvent: (e) => events.push(e) });
  assert.equal((await cdnDevice().start()).type, 'downloaded', JSON.stringify(events));
  const v1Files = await new DeviceState(storage, APP, 'production').files();
  assert.ok(v1Files, 'the manifest passed to the plugin is remembered');
  assert.ok(cdnLog.includes(`/apps/${APP}/files/manifests/${v1Files.sha256}.json`), `the whole manifest of v1: ${cdnLog}`);
  assert.equal((await storedManifest(v1Files.sha256)).toString(), v1Files.manifest, 'the CDN sent the gzip form; the device decoded it');
  assert.equal(viaCDN.fetched.length, 3, 'every file of v1');

  // v2 changes one line; deploy upload writes the patch from v1's manifest.
  /** Uploads www after writing css to style.css; returns the upload's JSON, the signed build reference and its file manifest's bytes. */
  const uploadStyle = async (css) => {
    await writeFile(join(www, 'assets', 'style.css'), css);
    const up = JSON.parse(await run(CLI.upload({ www, store })));
    const ref = JSON.parse(Buffer.from(JSON.parse(await readFile(join(storeDir, `apps/${APP}/builds/${up.number}.json`), 'utf8')).payload, 'base64'));
    return { ...up, ref, manifest: await storedManifest(ref.files_sha256) };
  };
  const v2 = await uploadStyle('body { margin: 1px }\n');
  const { files_sha256: v2Sum } = v2.ref;
  const v2Manifest = v2.manifest;
  cdnLog.length = 0;
  assert.equal((await cdnDevice().start()).type, 'downloaded', JSON.stringify(events));
  const files = cdnLog.filter((p) => p.includes('/files/manifests/') || p.includes('/files/patches/'));
  assert.deepEqual(files, [`/apps/${APP}/files/patches/${v1Files.sha256}-${v2Sum}.json`], 'the patch, not the whole manifest');
  const [, dl2] = viaCDN.calls.findLast(([m]) => m === 'download');
  assert.equal(dl2.version, v2.version);
  assert.deepEqual(dl2.manifest.map((e) => e.file_hash), JSON.parse(v2Manifest).files.map((f) => f.sha256), "v2's manifest goes to the plugin");
  assert.equal(viaCDN.fetched.length, 4, 'only the changed file of v2');
  assert.deepEqual(await new DeviceState(storage, APP, 'production').files(), { sha256: v2Sum, manifest: v2Manifest.toString() });

  // A device on a tracker that points files at the CDN gets the whole manifest of v2, then the patch to v3, the tracker's answers to GET /build/files.
  const tracker = await startTracker(CLI.serve({ store, token, db: join(tmp, 'events-cdn.db'), cdn: cdnURL, cacheTTL: '1ms' }));
  const filesAnswers = []; // [query, JSON answer] of each GET /build/files
  const recordFiles = async (url, init) => {
    const res = await fetch(url, init);
    const u = new URL(url);
    if (u.pathname === '/build/files') filesAnswers.push([u.searchParams, res.ok ? await res.clone().json() : res.status]);
    return res;
  };
  const viaTracker = new NodeUpdater({ pluginVersion: '8.51.14' });
  const trackerStorage = new MemoryStorage();
  const trackerDevice = () => new LiveUpdate({ app: APP, trust: { roots: [rootKey] }, updater: viaTracker, tracker, storage: trackerStorage, applyImmediately: true, fetch: recordFiles, onEvent: (e) => events.push(e) });
  assert.equal((await trackerDevice().start()).type, 'downloaded', JSON.stringify(events));
  assert.equal(filesAnswers.length, 1);
  assert.equal(filesAnswers[0][0].get('id'), v2.ref.id);
  assert.equal(filesAnswers[0][0].get('from'), null, 'nothing remembered yet');
  assert.equal(filesAnswers[0][1].manifest, v2Manifest.toString(), 'the whole manifest of v2');
  assert.equal(filesAnswers[0][1].files_url, `${cdnURL}/apps/${APP}/files/`);
  assert.deepEqual(await new DeviceState(trackerStorage, APP, 'production').files(), { sha256: v2Sum, manifest: v2Manifest.toString() });
  assert.equal(viaTracker.fetched.length, 3, 'every file of v2');

  const v3 = await uploadStyle('body { margin: 2px }\n');
  assert.equal((await trackerDevice().start()).type, 'downloaded', JSON.stringify(events));
  assert.equal(filesAnswers.length, 2);
  const [query, answer] = filesAnswers[1];
  assert.equal(query.get('id'), v3.ref.id);
  assert.equal(query.get('from'), v2Sum, "from v2's manifest");
  assert.equal(typeof answer.patch, 'string', `a patch: ${JSON.stringify(answer)}`);
  assert.ok(!('manifest' in answer), 'not the whole manifest');
  const [, dl3] = viaTracker.calls.findLast(([m]) => m === 'download');
  assert.equal(dl3.version, v3.version);
  assert.deepEqual(dl3.manifest.map((e) => e.file_hash), JSON.parse(v3.manifest).files.map((f) => f.sha256), "v3's manifest goes to the plugin");
  assert.equal(viaTracker.fetched.length, 4, 'only the changed file of v3');
  assert.deepEqual(await new DeviceState(trackerStorage, APP, 'production').files(), { sha256: v3.ref.files_sha256, manifest: v3.manifest.toString() });
  assert.ok(!events.some((e) => e.type === 'error'), JSON.stringify(events.filter((e) => e.type === 'error')));
  t.diagnostic(`events: ${events.map((e) => e.type).join(', ')}; tracker ${base}`);
});
