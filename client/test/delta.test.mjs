// Delta downloads in LiveUpdate: a verified build's file manifest, checked
// against the signed digest, goes to download() for plugins that take one;
// the zip with the checksum each plugin version compares otherwise; for the
// next build, the patch from the manifest passed before. Served by a local
// HTTP server as a CDN and the tracker's /build/files, with the Node
// stand-in for the plugin.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { createServer } from 'node:http';
import { after, afterEach, before, beforeEach, describe, test } from 'node:test';
import { brotliCompressSync, crc32, gunzipSync, gzipSync } from 'node:zlib';
import { DeviceState, downloadOptions, downloadTakesManifest, LiveUpdate, MemoryStorage, TYPE_LATEST, zipChecksum } from '../dist/index.js';
import { alice, endlessGzip, envelope, makeFilesPatch, vectors } from './helpers.mjs';
import { NodeUpdater } from './node-updater.mjs';

const valid = vectors.find((v) => v.name === 'valid');
const bundle = Buffer.from(valid.bundle, 'base64');
const { build: validRef, ...latestPayload } = JSON.parse(Buffer.from(JSON.parse(valid.latest).payload, 'base64'));
const sha256 = (b) => createHash('sha256').update(b).digest('hex');
const app = valid.expect.app;

// v1 is on the device as its builtin bundle; v2 is published with its files.
const v1 = new Map([
  ['index.html', Buffer.from('<!doctype html><title>shop</title>')],
  ['main.js', Buffer.from('CapacitorUpdater.notifyAppReady();\n' + 'export const price = (n) => n * 1.2;\n'.repeat(400))],
  ['assets/logo.svg', Buffer.from('<svg xmlns="http://www.w3.org/2000/svg"/>')],
  ['fonts/x.woff2.br', Buffer.from('a font that really is named .br')],
]);
const v2 = new Map(v1);
v2.set('main.js', Buffer.from(v1.get('main.js').toString().replace('1.2', '1.25')));
// v3, the next build: one file changed.
const v3 = new Map(v2);
v3.set('index.html', Buffer.from('<!doctype html><title>shop 3</title>'));

let objects; // store key -> bytes (or ENDLESS), served under /cdn/
const ENDLESS = Symbol('an endless gzip-encoded body');
let endless; // resolves when the client has gone away from an endless body
let manifestBytes;
let ref; // the signed build reference of the last build published (v2 unless a test publishes v3)
let log;
let server;
let base;

/**
 * Stores a build as deploy upload does, with the patch from the previous
 * build's file manifest, and signs a pointer to it.
 */
function publish(files = v2, { number = validRef.number, version = validRef.version, sequence = latestPayload.sequence } = {}) {
  const previous = manifestBytes;
  const entries = [...files.keys()].sort().map((name) => {
    const content = files.get(name);
    const br = brotliCompressSync(content);
    const encoding = br.length < content.length || name.endsWith('.br') ? 'br' : '';
    objects.set(`apps/${app}/files/${sha256(content)}${encoding ? '.br' : ''}`, encoding ? br : content);
    return { name, sha256: sha256(content), size: content.length, ...(encoding ? { encoding } : {}) };
  });
  manifestBytes = Buffer.from(JSON.stringify({ app, files: entries }));
  objects.set(`apps/${app}/files/manifests/${sha256(manifestBytes)}.json`, manifestBytes);
  if (previous) objects.set(patchKey(previous, manifestBytes), makeFilesPatch(app, previous, manifestBytes));
  const id = `${app}-${number}`;
  ref = { ...validRef, id, number, version, crc32: crc32(bundle).toString(16).padStart(8, '0'), files_sha256: sha256(manifestBytes), files_size: manifestBytes.length };
  objects.set(`apps/${app}/channels/production/latest.json`, Buffer.from(envelope(TYPE_LATEST, JSON.stringify({ ...latestPayload, sequence, build: ref }), alice)));
}

/** Publishes v3 as the next build. */
const publishV3 = () => publish(v3, { number: validRef.number + 1, version: '1.4.3', sequence: latestPayload.sequence + 1 });

const patchKey = (from, to) => `apps/${app}/files/patches/${sha256(from)}-${sha256(to)}.json`;

const manifestKey = () => `apps/${app}/files/manifests/${ref.files_sha256}.json`;

before(async () => {
  server = createServer((req, res) => {
    const url = new URL(req.url, 'http://x');
    log.push(`${req.method} ${url.pathname}${url.search}`);
    const json = (v, status = 200) => {
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(v));
    };
    if (url.pathname.startsWith('/cdn/')) {
      const obj = objects.get(url.pathname.slice(5));
      if (!obj) return json({ error: 'not found' }, 404);
      if (obj === ENDLESS) return (endless = endlessGzip(res));
      return res.end(obj);
    }
    switch (url.pathname) {
      case '/build/latest':
        return json({ build: { id: ref.id, build: ref.version }, latest: JSON.parse(objects.get(`apps/${app}/channels/production/latest.json`)), acl: JSON.parse(valid.acl) });
      case '/build/files': {
        const stored = objects.get(manifestKey());
        const m = stored?.[0] === 0x1f ? gunzipSync(stored) : stored; // as deploy serve decodes it
        const from = url.searchParams.get('from');
        const patch = from && objects.get(`apps/${app}/files/patches/${from}-${ref.files_sha256}.json`);
        const files_url = `${base}/cdn/apps/${app}/files/`;
        if (patch) return json({ patch: patch.toString(), files_url });
        return m ? json({ manifest: m.toString(), files_url }) : json({ error: 'not_found' }, 404);
      }
      case '/build/download':
        res.writeHead(302, { location: `/cdn/${ref.bundle}` });
        return res.end();
      case '/build/download/complete':
      case `/capgo/${app}/stats`:
        return json({ ok: true });
    }
    json({ error: 'not found' }, 404);
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${server.address().port}`;
});

after(() => server.close());

beforeEach(() => {
  objects = new Map([[validRef.bundle, bundle], ['acl.json', Buffer.from(valid.acl)]]);
  manifestBytes = undefined;
  publish();
  log = [];
});

function liveUpdate(mode, updater, storage = new MemoryStorage()) {
  const events = [];
  const lu = new LiveUpdate({
    app,
    channel: valid.expect.channel,
    trust: { roots: valid.root_keys, threshold: valid.threshold },
    updater,
    storage,
    ...(mode === 'tracker' ? { tracker: base } : { cdn: `${base}/cdn` }),
    onEvent: (e) => events.push(e),
    now: () => new Date(valid.expect.now),
    applyImmediately: true,
  });
  return { lu, events };
}

const downloadCall = (u) => u.calls.findLast(([m]) => m === 'download')[1];
const runningFiles = (u) => u.bundles.get(u.currentId).files;

for (const mode of ['cdn', 'tracker']) {
  describe(`a delta download via the ${mode}`, () => {
    test('passes the checked manifest, fetches only the changed file, and runs v2', async () => {
      const updater = new NodeUpdater({ pluginVersion: '8.51.14', builtinFiles: v1 });
      const { lu, events } = liveUpdate(mode, updater);
      await lu.check();
      const call = downloadCall(updater);
      assert.equal(call.checksum, undefined, 'no zip checksum with a manifest');
      const stored = JSON.parse(manifestBytes).files;
      assert.deepEqual(call.manifest.map((e) => e.file_name), stored.map((f) => (f.encoding === 'br' ? `${f.name}.br` : f.name)));
      assert.ok(call.manifest.some((e) => e.file_name === 'fonts/x.woff2.br.br'), 'a file named .br goes Brotli-encoded');
      assert.equal(updater.fetched.length, 1, `fetched ${updater.fetched}`);
      assert.deepEqual(runningFiles(updater), v2);
      assert.ok(events.some((e) => e.type === 'applying'), JSON.stringify(events));
    });

    test('a tampered manifest is refused: the zip is downloaded with its checksum', async () => {
      objects.set(manifestKey(), Buffer.from(manifestBytes.toString().replace('logo.svg', 'evil.svg')));
      await refused(mode);
    });

    test('a manifest whose digest is not the signed one is refused', async () => {
      const other = Buffer.from(JSON.stringify({ app, files: [{ name: 'index.html', sha256: sha256(Buffer.from('x')), size: 1 }] }));
      objects.set(manifestKey(), other);
      await refused(mode);
    });
  });
}

for (const mode of ['cdn', 'tracker']) {
  describe(`the next build via the ${mode}`, () => {
    /** Downloads v2 with its manifest, then publishes v3 with the patch from it. */
    async function afterV2() {
      const updater = new NodeUpdater({ pluginVersion: '8.51.14', builtinFiles: v1 });
      const storage = new MemoryStorage();
      await liveUpdate(mode, updater, storage).lu.check();
      assert.ok(!log.some((l) => l.includes('/files/patches/') || l.includes('from=')), `no manifest remembered, no patch asked for: ${log}`);
      const v2Manifest = manifestBytes;
      assert.deepEqual(await filesOf(storage), { sha256: sha256(v2Manifest), manifest: v2Manifest.toString() });
      publishV3();
      log = [];
      // The app restarts: a new LiveUpdate on the same storage.
      return { updater, storage, v2Manifest, ...liveUpdate(mode, updater, storage) };
    }
    const filesOf = (storage) => new DeviceState(storage, app, 'production').files();
    const manifestRequests = () => log.filter((l) => /\/files\/(manifests|patches)\/|^GET \/build\/files/.test(l));

    test('is downloaded with the patch from the manifest passed before', async () => {
      const { updater, storage, v2Manifest, lu, events } = await afterV2();
      objects.delete(manifestKey()); // only the patch makes v3's manifest
      await lu.check();
      assert.deepEqual(
        manifestRequests(),
        mode === 'cdn' ? [`GET /cdn/${patchKey(v2Manifest, manifestBytes)}`] : [`GET /build/files?id=${ref.id}&device=${updater.deviceId}&from=${sha256(v2Manifest)}`],
      );
      assert.deepEqual(runningFiles(updater), v3);
      assert.equal(updater.fetched.length, 2, `only main.js, then index.html: ${updater.fetched}`);
      assert.deepEqual(events.map((e) => e.type), ['downloading', 'downloaded', 'applying']);
      assert.deepEqual(await filesOf(storage), { sha256: sha256(manifestBytes), manifest: manifestBytes.toString() }, 'v3 is the next base');
    });

    test('a patch that does not make the signed manifest is refused: the whole manifest is used', async () => {
      const { updater, storage, v2Manifest, lu, events } = await afterV2();
      const key = patchKey(v2Manifest, manifestBytes);
      const evil = sha256(Buffer.from('<script>alert("pwned")</script>'));
      objects.set(key, Buffer.from(objects.get(key).toString().replace(sha256(v3.get('index.html')), evil)));
      await lu.check();
      const err = events.find((e) => e.type === 'error');
      assert.equal(err?.rule, 'files_mismatch', JSON.stringify(events));
      assert.match(err.message, /file manifest patch of retailer-8 refused: .*; fetching the whole manifest/);
      assert.deepEqual(
        manifestRequests(),
        mode === 'cdn'
          ? [`GET /cdn/${key}`, `GET /cdn/${manifestKey()}`]
          : [`GET /build/files?id=${ref.id}&device=${updater.deviceId}&from=${sha256(v2Manifest)}`, `GET /build/files?id=${ref.id}&device=${updater.deviceId}`],
      );
      assert.equal(log.includes(`POST /capgo/${app}/stats`), mode === 'tracker', 'verify_fail is reported to a tracker');
      assert.ok(downloadCall(updater).manifest, 'a manifest download');
      assert.deepEqual(runningFiles(updater), v3);
      assert.equal((await filesOf(storage)).sha256, sha256(manifestBytes));
    });

    test('without a patch, the whole manifest is used', async () => {
      const { updater, v2Manifest, lu, events } = await afterV2();
      objects.delete(patchKey(v2Manifest, manifestBytes));
      await lu.check();
      assert.deepEqual(
        manifestRequests(),
        mode === 'cdn'
          ? [`GET /cdn/${patchKey(v2Manifest, manifestBytes)}`, `GET /cdn/${manifestKey()}`]
          : [`GET /build/files?id=${ref.id}&device=${updater.deviceId}&from=${sha256(v2Manifest)}`], // the tracker answers the manifest
      );
      assert.deepEqual(events.map((e) => e.type), ['downloading', 'downloaded', 'applying']);
      assert.deepEqual(runningFiles(updater), v3);
    });
  });
}

describe('a file manifest stored gzip-compressed, as a folder store holds it and its web server sends it', () => {
  beforeEach(() => objects.set(manifestKey(), gzipSync(manifestBytes)));

  test('is decoded, checked against the signed digest, and remembered decoded', async () => {
    const updater = new NodeUpdater({ pluginVersion: '8.51.14', builtinFiles: v1 });
    const storage = new MemoryStorage();
    const { lu, events } = liveUpdate('cdn', updater, storage);
    await lu.check();
    assert.ok(downloadCall(updater).manifest, JSON.stringify(events));
    assert.deepEqual(runningFiles(updater), v2);
    assert.equal((await new DeviceState(storage, app, 'production').files()).manifest, manifestBytes.toString());
  });

  test('one that decodes past the signed size (a gzip bomb) is refused: the zip is downloaded', async () => {
    const bomb = gzipSync(Buffer.concat([manifestBytes, Buffer.alloc(64 << 20, ' ')]));
    assert.ok(bomb.length < 100 << 10);
    objects.set(manifestKey(), bomb);
    await refused('cdn', /decodes to more than \d+ bytes/);
  });

  test('one the CDN sends HTTP-encoded without end is cut at the signed size and refused', { timeout: 20_000 }, async () => {
    objects.set(manifestKey(), ENDLESS);
    await refused('cdn', /file manifest has \d+ bytes/);
    await endless;
  });

  test('a tampered one is refused', async () => {
    objects.set(manifestKey(), gzipSync(Buffer.from(manifestBytes.toString().replace('logo.svg', 'evil.svg'))));
    await refused('cdn');
  });

  describe('where the platform has no DecompressionStream', () => {
    let saved;
    beforeEach(() => {
      saved = globalThis.DecompressionStream;
      delete globalThis.DecompressionStream;
    });
    afterEach(() => {
      globalThis.DecompressionStream = saved;
    });

    test('is asked of the tracker, which sends it decoded', async () => {
      const updater = new NodeUpdater({ pluginVersion: '8.51.14', builtinFiles: v1 });
      const events = [];
      const lu = new LiveUpdate({ app, trust: { roots: valid.root_keys, threshold: valid.threshold }, updater, storage: new MemoryStorage(), cdn: `${base}/cdn`, tracker: base, onEvent: (e) => events.push(e), now: () => new Date(valid.expect.now), applyImmediately: true });
      await lu.check();
      assert.deepEqual(log.filter((l) => l.includes('/files/manifests/') || l.startsWith('GET /build/files')), [`GET /cdn/${manifestKey()}`, `GET /build/files?id=${ref.id}&device=${updater.deviceId}`]);
      assert.ok(downloadCall(updater).manifest, JSON.stringify(events));
      assert.deepEqual(runningFiles(updater), v2);
    });

    test('downloadOptions with a fetcher of its caller takes the zip, refusing nothing', async () => {
      const got = await downloadOptions(ref, app, 'https://cdn/b.zip', '8.51.14', async () => ({ data: gzipSync(manifestBytes), filesURL: 'https://cdn/f/', patch: false }));
      assert.deepEqual(got, { options: { url: 'https://cdn/b.zip', version: ref.version, checksum: ref.sha256 }, patchRefused: undefined });
    });

    test('without a tracker, the zip is downloaded and nothing is reported as refused', async () => {
      const updater = new NodeUpdater({ pluginVersion: '8.51.14', builtinFiles: v1 });
      const { lu, events } = liveUpdate('cdn', updater);
      await lu.check();
      assert.deepEqual(downloadCall(updater), { url: `${base}/cdn/${ref.bundle}`, version: ref.version, checksum: ref.sha256 });
      assert.ok(!events.some((e) => e.type === 'error' || e.rule), JSON.stringify(events));
      assert.deepEqual(updater.bundles.get(updater.currentId).bytes, bundle);
    });
  });
});

async function refused(mode, message = /./) {
  const updater = new NodeUpdater({ pluginVersion: '8.51.14', builtinFiles: v1 });
  const { lu, events } = liveUpdate(mode, updater);
  await lu.check();
  const call = downloadCall(updater);
  assert.equal(call.manifest, undefined);
  assert.equal(call.checksum, ref.sha256);
  assert.equal(updater.fetched.length, 0);
  const err = events.find((e) => e.type === 'error');
  assert.equal(err?.rule, 'files_mismatch', JSON.stringify(events));
  assert.match(err.message, message);
  assert.ok(events.some((e) => e.type === 'applying'), 'the zip is still applied');
}

test('a file object whose bytes do not match its hash fails the download: nothing is switched to', async () => {
  const main = v2.get('main.js');
  objects.set(`apps/${app}/files/${sha256(main)}.br`, brotliCompressSync(Buffer.from('alert("pwned")')));
  const updater = new NodeUpdater({ pluginVersion: '8.51.14', builtinFiles: v1 });
  const { lu, events } = liveUpdate('cdn', updater);
  const ev = await lu.check();
  assert.equal(ev.type, 'download_failed', JSON.stringify(events));
  assert.equal(updater.currentId, 'builtin');
});

test('an old plugin gets the zip with its CRC32', async () => {
  const updater = new NodeUpdater({ pluginVersion: '5.9.5' });
  const storage = new MemoryStorage();
  const { lu } = liveUpdate('tracker', updater, storage);
  await lu.check();
  const call = downloadCall(updater);
  assert.equal(call.manifest, undefined);
  assert.equal(call.checksum, ref.crc32);
  assert.equal(await new DeviceState(storage, app, 'production').files(), null, 'no manifest to remember');
  assert.deepEqual(updater.bundles.get(updater.currentId).bytes, bundle);
});

test('a plugin that does not say its version gets the zip with its SHA-256', async () => {
  const updater = new NodeUpdater();
  const { lu } = liveUpdate('cdn', updater);
  await lu.check();
  assert.deepEqual(downloadCall(updater), { url: `${base}/cdn/${ref.bundle}`, version: ref.version, checksum: ref.sha256 });
});

test('version rules', () => {
  const r = { sha256: 's', crc32: 'c' };
  for (const [v, manifest, checksum] of [
    ['4.62.0', false, 'c'],
    ['5.9.5', false, 'c'],
    ['5.10.0', true, 's'],
    ['6.14.27', false, 'c'],
    ['6.14.28', true, 's'],
    ['7.0.1', false, 'c'],
    ['7.0.2', false, undefined],
    ['7.0.29', false, undefined],
    ['7.0.30', false, 's'],
    ['7.3.9', false, 's'],
    ['7.4.0', true, 's'],
    ['8.0.0', true, 's'],
    ['garbage', false, 's'],
    [undefined, false, 's'],
  ]) {
    assert.equal(downloadTakesManifest(v), manifest, `manifest for ${v}`);
    assert.equal(zipChecksum(r, v), checksum, `checksum for ${v}`);
  }
  assert.equal(zipChecksum({ sha256: 's', crc32: '' }, '5.0.0'), undefined, 'no CRC32 recorded: no checksum');
});
