// What an app bundles with the client: its own code and @noble/ed25519 (a
// few KB, the fallback where WebCrypto lacks Ed25519), not @noble/curves,
// whose other curves and protocols bundlers do not drop.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { test } from 'node:test';

test('the runtime imports only @noble/ed25519', () => {
  const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'));
  assert.deepEqual(Object.keys(pkg.dependencies), ['@noble/ed25519']);
  const dist = new URL('../dist/', import.meta.url);
  const bare = new Set();
  for (const f of readdirSync(dist).filter((f) => f.endsWith('.js'))) {
    for (const m of readFileSync(new URL(f, dist), 'utf8').matchAll(/(?:from|import\()\s*['"]([^'"]+)['"]/g)) {
      if (!m[1].startsWith('.')) bare.add(m[1]);
    }
  }
  assert.deepEqual([...bare], ['@noble/ed25519']);
});
