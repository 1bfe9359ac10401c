// docs/client.md against the code: every rule the verifier has is explained
// where client.md lists what rejected events mean.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';

const read = (path) => readFileSync(new URL(path, import.meta.url), 'utf8');

test("client.md explains every rule of the verifier", () => {
  const union = /export type Rule =([^;]+);/.exec(read('../src/verify.ts'))[1];
  const rules = [...union.matchAll(/'([a-z_]+)'/g)].map((m) => m[1]);
  assert.equal(rules.length, 15);
  const doc = read('../../docs/client.md');
  const start = doc.indexOf('`rejected` rules mean:');
  assert.ok(start >= 0, 'client.md lists what rejected rules mean');
  const section = doc.slice(start, doc.indexOf('\n### ', start));
  const missing = rules.filter((r) => !section.includes(`\`${r}\``));
  assert.deepEqual(missing, [], 'rules client.md does not explain');
});
