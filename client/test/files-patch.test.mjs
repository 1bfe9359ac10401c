// applyFilesPatch, as manifest/patch.go: a patch from the file manifest a
// device checked before makes the signed manifest of the next build, or
// fails with the rule Go names.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { test } from 'node:test';
import { applyFilesPatch, MAX_FILE_MANIFEST_SIZE, VerifyError } from '../dist/index.js';
import { makeFilesPatch } from './helpers.mjs';

const sha256 = (b) => createHash('sha256').update(b).digest('hex');
const refOf = (data) => ({ id: 'retailer-2', files_sha256: sha256(data), files_size: data.length });

// Made by Go's manifest.MakeFilesPatch: a changed file with a non-ASCII name, and one added.
const goBase = Buffer.from("{\"app\":\"retailer\",\"files\":[{\"name\":\"assets/café.svg\",\"sha256\":\"d4dc56669143034f31aa309635d4113d9ad76a02b1739da22c965ed2049be9e6\",\"size\":6},{\"name\":\"fonts/x.woff2.br\",\"sha256\":\"795ea3efa43d0872b63bf0067be97553b46983e4f075097669391e9d15388ecc\",\"size\":4,\"encoding\":\"br\"},{\"name\":\"index.html\",\"sha256\":\"b7d082ee12e91b756ea22e8513b8594eebcf5d39fab813da3cb55794dc888ad7\",\"size\":6},{\"name\":\"main.js\",\"sha256\":\"3bfc269594ef649228e9a74bab00f042efc91d5acc6fbee31a382e80d42388fe\",\"size\":2}]}");
const goTarget = Buffer.from("{\"app\":\"retailer\",\"files\":[{\"name\":\"assets/café.svg\",\"sha256\":\"68a6346dfb117dbcde856560a4b884919433354e13d4d9b5fe5fecb2bce0b985\",\"size\":13},{\"name\":\"fonts/x.woff2.br\",\"sha256\":\"795ea3efa43d0872b63bf0067be97553b46983e4f075097669391e9d15388ecc\",\"size\":4,\"encoding\":\"br\"},{\"name\":\"index.html\",\"sha256\":\"b7d082ee12e91b756ea22e8513b8594eebcf5d39fab813da3cb55794dc888ad7\",\"size\":6},{\"name\":\"main.js\",\"sha256\":\"3bfc269594ef649228e9a74bab00f042efc91d5acc6fbee31a382e80d42388fe\",\"size\":2},{\"name\":\"new.js\",\"sha256\":\"279b8a60f444fa8b6275687ce7e44363d97f72f88e4a3285baf0d9ed812e4061\",\"size\":5}]}");
const goPatch = Buffer.from("{\"app\":\"retailer\",\"from\":\"7209de0411499dccedfb3d10339d17f859c12860c45acc174550f927f84df6c5\",\"to\":\"2e4fa3ad07ce591a45e7da3c03ac62d5e813465045dcac085976b692d5b63c29\",\"ops\":[{\"data\":\"\",\"offset\":0,\"length\":27},{\"data\":\"{\\\"name\\\":\\\"assets/café.svg\\\",\\\"sha256\\\":\\\"68a6346dfb117dbcde856560a4b884919433354e13d4d9b5fe5fecb2bce0b985\\\",\\\"size\\\":13},\",\"offset\":140,\"length\":236},{\"data\":\"{\\\"name\\\":\\\"main.js\\\",\\\"sha256\\\":\\\"3bfc269594ef649228e9a74bab00f042efc91d5acc6fbee31a382e80d42388fe\\\",\\\"size\\\":2},{\\\"name\\\":\\\"new.js\\\",\\\"sha256\\\":\\\"279b8a60f444fa8b6275687ce7e44363d97f72f88e4a3285baf0d9ed812e4061\\\",\\\"size\\\":5}]}\",\"offset\":0,\"length\":0}]}");

/** The bytes of a file manifest of n files; changed adds to the content of the names it has. */
function testManifest(n, changed = {}) {
  const files = Array.from({ length: n }, (_, i) => {
    const name = `svg/icon-${String(i).padStart(4, '0')}.svg`;
    return { name, sha256: sha256(name + (changed[name] ?? '')), size: 100 + i };
  });
  return Buffer.from(JSON.stringify({ app: 'retailer', files }));
}

test('a patch made by Go makes the target', async () => {
  const { manifest, data } = await applyFilesPatch(refOf(goTarget), 'retailer', goBase, goPatch);
  assert.deepEqual(Buffer.from(data), goTarget);
  assert.deepEqual(manifest.files.map((f) => f.name), ['assets/café.svg', 'fonts/x.woff2.br', 'index.html', 'main.js', 'new.js']);
  assert.deepEqual(makeFilesPatch('retailer', goBase, goTarget), goPatch, 'the test helper makes what Go makes');
});

test('patches make the target from little', async () => {
  const base = testManifest(1500);
  for (const [name, target] of Object.entries({
    'one file changed': testManifest(1500, { 'svg/icon-0003.svg': 'x' }),
    'two files changed': testManifest(1500, { 'svg/icon-0000.svg': 'x', 'svg/icon-1499.svg': 'y' }),
    'files added': testManifest(1510),
    'files removed': testManifest(1200),
    'nothing in common': testManifest(3, { 'svg/icon-0000.svg': 'a', 'svg/icon-0001.svg': 'b', 'svg/icon-0002.svg': 'c' }),
    'the same manifest': base,
  })) {
    const patch = makeFilesPatch('retailer', base, target);
    const { data } = await applyFilesPatch(refOf(target), 'retailer', base, patch);
    assert.deepEqual(Buffer.from(data), target, name);
    if (name === 'one file changed') assert.ok(patch.length <= 600, `a ${patch.length}-byte patch for one changed file`);
  }
});

test('a patch that does not make the signed manifest is refused', async () => {
  const base = testManifest(20);
  const target = testManifest(20, { 'svg/icon-0003.svg': 'x' });
  const ref = refOf(target);
  const good = makeFilesPatch('retailer', base, target);
  const edit = (f) => {
    const p = JSON.parse(good);
    f(p);
    return Buffer.from(JSON.stringify(p));
  };
  const other = testManifest(20, { 'svg/icon-0009.svg': 'z' });
  for (const [name, b, patch, r, rule] of [
    ['not JSON', base, Buffer.from('{'), ref, 'malformed'],
    ['a null', base, Buffer.from('{"app":"retailer","from":null,"to":"","ops":[]}'), ref, 'malformed'],
    ['no ops', base, edit((p) => delete p.ops), ref, 'malformed'],
    ['a key of another case', base, edit((p) => (p.ops[0].Offset = 1)), ref, 'malformed'],
    ['a negative offset', base, edit((p) => (p.ops[0].offset = -1)), ref, 'malformed'],
    ['another app', base, edit((p) => (p.app = 'other')), ref, 'malformed'],
    ['another base', other, good, ref, 'files_mismatch'],
    ['another target', base, good, refOf(other), 'files_mismatch'],
    ['a build without files', base, good, { id: 'retailer-2', files_sha256: '', files_size: 0 }, 'files_mismatch'],
    ['a copy past the base', base, edit((p) => (p.ops[0].offset = base.length)), ref, 'malformed'],
    ['a copy overflowing', base, edit((p) => Object.assign(p.ops[0], { offset: 1, length: Number.MAX_SAFE_INTEGER })), ref, 'malformed'],
    ['too many bytes', base, edit((p) => p.ops.push({ data: 'x', offset: 0, length: 0 })), ref, 'files_mismatch'],
    ['other bytes', base, edit((p) => {
      const last = p.ops.at(-1);
      if (last.length > 0) last.offset--;
      else last.data = last.data.replace('1', '2');
    }), ref, 'files_mismatch'],
    ['over 8 MiB', base, Buffer.concat([good, Buffer.alloc(MAX_FILE_MANIFEST_SIZE, ' ')]), ref, 'malformed'],
  ]) {
    await assert.rejects(applyFilesPatch(r, 'retailer', b, patch), (e) => e instanceof VerifyError && e.rule === rule, name);
  }
});
