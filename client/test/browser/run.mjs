// Runs the shared vectors through the client in a real headless Chromium
// (Debian's, through playwright-core), the engine of Android's WebView:
// WebCrypto's Ed25519, DecompressionStream and the @noble/ed25519 fallback
// as an app's page has them; then LiveUpdate's check against a tracker on
// the same server, through the browser's fetch. Run by the Go tests (client/browser_test.go)
// as: node test/browser/run.mjs, with
//   CHROMIUM         the browser executable
//   PLAYWRIGHT_FROM  a folder whose node_modules hold playwright-core
// after the client is compiled to dist/. Prints what it checked; exits 1
// with every difference.
import { readFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import { createRequire } from 'node:module';
import { extname, join, normalize } from 'node:path';
import { gzipSync } from 'node:zlib';

const env = (name) => {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set; run this script from the Go tests (go test ./client)`);
  return v;
};
const { chromium } = createRequire(join(env('PLAYWRIGHT_FROM'), 'package.json'))('playwright-core');
const client = new URL('../../', import.meta.url).pathname;

// What the page may load: the compiled client, its one dependency, the
// vector runner and the vectors.
const files = {
  '/dist/': join(client, 'dist'),
  '/noble/': join(client, 'node_modules/@noble/ed25519'),
  '/test/verdict.mjs': join(client, 'test/verdict.mjs'),
  '/vectors.json': join(client, '../testdata/vectors.json'),
};
const page = `<!doctype html><meta charset="utf-8"><title>client</title>
<script type="importmap">{"imports": {"@noble/ed25519": "/noble/index.js"}}</script>`;
const types = { '.js': 'text/javascript', '.mjs': 'text/javascript', '.json': 'application/json' };

// A tracker for LiveUpdate in the page: it offers the "valid" vector's
// build and answers the download report with 204, as a proxy may.
const vectors = JSON.parse(await readFile(files['/vectors.json'], 'utf8'));
const valid = vectors.find((v) => v.name === 'valid');
const offer = JSON.stringify({
  build: { id: 'retailer-7', build: '1.4.2' },
  latest: JSON.parse(valid.latest),
  acl: JSON.parse(valid.acl),
});
const reports = [];

const server = createServer(async (req, res) => {
  const path = normalize(new URL(req.url, 'http://x').pathname);
  if (path === '/') return res.writeHead(200, { 'content-type': 'text/html' }).end(page);
  if (path === '/build/latest') return res.writeHead(200, { 'content-type': 'application/json' }).end(offer);
  if (path === '/build/download/complete') {
    reports.push(req.url);
    return res.writeHead(204).end();
  }
  const prefix = Object.keys(files).find((p) => (p.endsWith('/') ? path.startsWith(p) : path === p));
  try {
    const file = prefix.endsWith('/') ? join(files[prefix], path.slice(prefix.length)) : files[prefix];
    res.writeHead(200, { 'content-type': types[extname(file)] ?? 'application/octet-stream' }).end(await readFile(file));
  } catch {
    res.writeHead(404).end();
  }
});
await new Promise((r) => server.listen(0, '127.0.0.1', r));
const base = `http://127.0.0.1:${server.address().port}`;

const browser = await chromium.launch({ executablePath: env('CHROMIUM'), headless: true, args: ['--no-sandbox'] });
let failed = false;
try {
  const tab = await browser.newPage();
  const problems = [];
  tab.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  await tab.goto(`${base}/`);
  // A gzip form of 64 MiB of spaces after a manifest: it must be refused
  // once it decodes past the signed size, not decoded whole.
  const bomb = gzipSync(Buffer.alloc(64 << 20, ' ')).toString('base64');
  const result = await tab.evaluate(async (bomb) => {
    const m = await import('/dist/index.js');
    const { runVector } = await import('/test/verdict.mjs');
    const vectors = await (await fetch('/vectors.json')).json();
    const differences = [];
    for (const impl of ['auto', 'webcrypto', 'noble']) {
      for (const v of vectors) {
        const got = await runVector(m, v, impl).catch((e) => `error: ${e.message}`);
        if (got !== v.verdict) differences.push(`${impl} ${v.name}: ${got}, want ${v.verdict}`);
      }
    }
    let bombRefused;
    try {
      await m.decodeStoredFileManifest(Uint8Array.from(atob(bomb), (c) => c.charCodeAt(0)), 1 << 20);
      bombRefused = 'decoded';
    } catch (e) {
      bombRefused = e.message; // the rule, then what was wrong
    }
    return { vectors: vectors.length, differences, bombRefused, userAgent: navigator.userAgent };
  }, bomb);
  const check = await tab.evaluate(async (valid) => {
    const m = await import('/dist/index.js');
    const info = (version) => ({ id: version, version, status: 'success', checksum: '', downloaded: '' });
    const updater = {
      download: async (o) => info(o.version),
      set: async () => {},
      next: async () => {},
      notifyAppReady: async () => {},
      current: async () => ({ bundle: info('builtin'), native: '1.0.0' }),
      getDeviceId: async () => ({ deviceId: '1f2e3d4c-0000-4000-8000-000000000001' }),
    };
    const events = [];
    const lu = new m.LiveUpdate({
      app: valid.expect.app,
      channel: valid.expect.channel,
      trust: { roots: valid.root_keys, threshold: valid.threshold },
      updater,
      storage: new m.MemoryStorage(),
      tracker: location.origin,
      now: () => new Date(valid.expect.now),
      onEvent: (e) => events.push(`${e.type}: ${e.message}`),
    });
    return { result: (await lu.check()).type, events };
  }, valid);
  console.log(`LiveUpdate in the page: ${check.result}; ${check.events.join('; ')}; ${reports.length} download reported`);
  if (check.result !== 'downloaded' || check.events.some((e) => e.startsWith('error')) || reports.length !== 1) failed = true;
  console.log(`${result.userAgent}: ${result.vectors} vectors, each with auto, webcrypto and noble`);
  for (const d of result.differences) console.error(d);
  console.log(`a gzip bomb: ${result.bombRefused}`);
  for (const p of problems) console.error(p);
  failed ||= result.differences.length > 0 || !/^files_mismatch: .*decodes to more than 1048576 bytes/.test(result.bombRefused) || problems.length > 0 || result.vectors < 100;
} finally {
  await browser.close();
  server.close();
}
process.exit(failed ? 1 : 0);
