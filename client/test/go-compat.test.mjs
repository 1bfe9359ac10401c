// Inputs beyond the shared table where JSON.parse and Go's encoding/json
// disagree. Each expected verdict is what manifest.Trust.VerifyLatest says
// (checked against the Go code when these were written: run with
// DUMP_CASES=file.json to write them in the vectors.json format).
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { test } from 'node:test';
import { TYPE_ACL, TYPE_LATEST } from '../dist/index.js';
import { alice, bob, envelope, pub, root, seed, vectors, verdict } from './helpers.mjs';
const valid = vectors.find((v) => v.name === 'valid');

const sha = '77be8e7ad06f84230bd3e2125ee3825ac0dfc615fea63135c98056014c6b9058';
const ref = `{"id":"retailer-7","number":7,"version":"1.4.2","bundle":"apps/retailer/bundles/${sha}.zip","sha256":"${sha}","size":40,"min_native":"1.0.0"}`;
const latestText = (fields = {}) => {
  const f = {
    app: '"retailer"',
    channel: '"production"',
    sequence: '5',
    issued: '"2026-11-01T12:00:00Z"',
    expires: '"2027-01-30T12:00:00Z"',
    build: ref,
    ...fields,
  };
  return '{' + Object.entries(f).filter(([, v]) => v !== undefined).map(([k, v]) => `"${k}":${v}`).join(',') + '}';
};
const latest = (text) => envelope(TYPE_LATEST, text, alice);
const aliceUser = (keys = `["${pub(alice)}"]`, grants = '{"retailer":{"can_upload":true}}') => `{"name":"alice","keys":${keys},"grants":${grants}}`;
const acl = (text) => envelope(TYPE_ACL, text, root);
const aclText = (users = `[${aliceUser()}]`, version = '2') => `{"version":${version},"issued":"2026-11-01T12:00:00Z","users":${users}}`;

const cases = [
  // latest.json payloads
  ['field names match case-insensitively', 'ok', { latest: latest('{"App":"retailer","CHANNEL":"production","Sequence":5,"expires":"2027-01-30T12:00:00Z","build":' + ref + '}') }],
  ['the long s folds to s in field names', 'ok', { latest: latest(latestText({ sequence: undefined, '\u017fequence': '5' })) }],
  ['a later duplicate key wins', 'ok', { latest: latest(latestText().replace('{', '{"app":"shop",')) }],
  ['unknown fields are ignored', 'ok', { latest: latest(latestText({ extra: '{"nested":[1,2.5,"x",null,true]}' })) }],
  ['an integer written as 5.0', 'malformed', { latest: latest(latestText({ sequence: '5.0' })) }],
  ['an integer written as 5e0', 'malformed', { latest: latest(latestText({ sequence: '5e0' })) }],
  ['an integer as a string', 'malformed', { latest: latest(latestText({ sequence: '"5"' })) }],
  ['a string as a number', 'malformed', { latest: latest(latestText({ app: '5' })) }],
  ['data after the payload', 'malformed', { latest: latest(latestText() + ' x') }],
  ['a second JSON value after the payload', 'malformed', { latest: latest(latestText() + latestText()) }],
  ['a closing brace after the payload (Go stops reading there)', 'ok', { latest: latest(latestText() + ' }') }],
  ['a byte-order mark before the payload', 'malformed', { latest: latest('\ufeff' + latestText()) }],
  ['payload null', 'app_mismatch', { latest: latest('null') }],
  ['expires with an offset', 'ok', { latest: latest(latestText({ expires: '"2027-01-30T14:00:00+02:00"' })) }],
  ['expires with a one-digit hour', 'ok', { latest: latest(latestText({ expires: '"2027-01-30T1:00:00Z"' })) }],
  ['expires with a comma before the fraction', 'ok', { latest: latest(latestText({ expires: '"2027-01-30T12:00:00,5Z"' })) }],
  ['expires with an escape in the string', 'malformed', { latest: latest(latestText({ expires: '"2027-01-30T12:00:00\\u005a"' })) }],
  ['expires on 30 February', 'malformed', { latest: latest(latestText({ expires: '"2027-02-30T12:00:00Z"' })) }],
  ['expires null is the zero time', 'expired', { latest: latest(latestText({ expires: 'null' })) }],
  ['expires missing is the zero time', 'expired', { latest: latest(latestText({ expires: undefined })) }],
  ['expires one nanosecond after now', 'ok', { latest: latest(latestText({ expires: '"2026-11-01T13:00:00.000000001Z"' })), now: '2026-11-01T13:00:00Z' }],
  ['expires exactly now', 'expired', { latest: latest(latestText({ expires: '"2026-11-01T13:00:00Z"' })), now: '2026-11-01T13:00:00Z' }],
  ['build null', 'malformed', { latest: latest(latestText({ build: 'null' })) }],
  ['min_native null', 'ok', { latest: latest(latestText({ build: ref.replace('"1.0.0"', 'null') })) }],
  ['size zero', 'malformed', { latest: latest(latestText({ build: ref.replace('"size":40', '"size":0') })) }],
  ['sha256 in upper case', 'malformed', { latest: latest(latestText({ build: ref.replaceAll(sha, sha.toUpperCase()) })) }],
  ['id that does not match number', 'malformed', { latest: latest(latestText({ build: ref.replace('"number":7', '"number":8') })) }],
  ['nesting 10000 deep', 'ok', { latest: latest(latestText({ deep: '['.repeat(9999) + ']'.repeat(9999) })) }],
  ['nesting 10001 deep', 'malformed', { latest: latest(latestText({ deep: '['.repeat(10000) + ']'.repeat(10000) })) }],
  // envelopes
  ['envelope field names match case-insensitively', 'ok', { latest: valid.latest.replace('"payloadType"', '"PAYLOADTYPE"') }],
  ['payload base64 without padding', 'malformed', { latest: latest(latestText() + ' ').replace(/=+"/, '"') }],
  ['payload base64 with line breaks', 'ok', { latest: valid.latest.replace('"eyJhcHAi', '"eyJh\\r\\ncHAi') }],
  ['payload as an array of bytes', 'ok', { latest: (() => { const e = JSON.parse(valid.latest); e.payload = [...Buffer.from(e.payload, 'base64')]; return JSON.stringify(e); })() }],
  ['data after the envelope', 'malformed', { latest: valid.latest + '}' }],
  ['a null signature', 'untrusted_key', { latest: (() => { const e = JSON.parse(valid.latest); e.signatures = [null]; return JSON.stringify(e); })() }],
  ['a short signature by a known key', 'bad_signature', { latest: (() => { const e = JSON.parse(valid.latest); e.signatures[0].sig = e.signatures[0].sig.slice(0, 40); return JSON.stringify(e); })() }],
  ['a keyid in upper case', 'untrusted_key', { latest: (() => { const e = JSON.parse(valid.latest); e.signatures[0].keyid = e.signatures[0].keyid.toUpperCase(); return JSON.stringify(e); })() }],
  // ACLs
  ['ACL version 2.0', 'malformed', { acl: acl(aclText(undefined, '2.0')) }],
  ['ACL version 0', 'malformed', { acl: acl(aclText(undefined, '0')) }],
  ['ACL key with a trailing newline: it verifies but its text is not the grant holder', 'not_granted', { acl: acl(aclText(`[${aliceUser(`["${pub(alice)}\\n"]`)}]`)) }],
  ['ACL grant null', 'not_granted', { acl: acl(aclText(`[${aliceUser(undefined, '{"retailer":null}')}]`)) }],
  ['ACL grants given twice merge', 'ok', { acl: acl(aclText(`[{"name":"alice","keys":["${pub(alice)}"],"grants":{"retailer":{"can_upload":true}},"grants":{"other":{"can_upload":true}}}]`)) }],
  ['ACL users given twice decode into the same elements', 'ok', { acl: acl(`{"version":2,"users":[${aliceUser()},{"name":"bob","keys":["${pub(bob)}"]}],"users":[{"name":"x"}]}`) }],
  ['ACL users emptied by null', 'untrusted_key', { acl: acl(`{"version":2,"users":[${aliceUser()}],"users":null}`) }],
  ['ACL users truncated, then grown back over the old elements', 'ok', { acl: acl(`{"version":2,"users":[{"name":"bob","keys":["${pub(bob)}"]},${aliceUser()}],"users":[{}],"users":[{},{"name":"y"}]}`) }],
  ['ACL signed twice by the root counts once toward a threshold of 2', 'acl_untrusted', { acl: envelope(TYPE_ACL, aclText(), root, root), root_keys: [pub(root), pub(seed(2))], threshold: 2 }],
  ['a root key pinned twice counts twice', 'ok', { root_keys: [pub(root), pub(root)], threshold: 2 }],
];

const vectorsOf = cases.map(([name, want, c]) => ({
  ...valid,
  name,
  description: name,
  root_keys: c.root_keys ?? valid.root_keys,
  threshold: c.threshold ?? valid.threshold,
  acl: c.acl ?? valid.acl,
  latest: c.latest ?? valid.latest,
  expect: { ...valid.expect, now: c.now ?? valid.expect.now },
  bundle: undefined,
  verdict: want,
}));

if (process.env.DUMP_CASES) writeFileSync(process.env.DUMP_CASES, JSON.stringify(vectorsOf, null, 2) + '\n');

for (const v of vectorsOf) {
  test(`${v.name}: ${v.verdict}`, async () => {
    assert.equal(await verdict(v, 'auto'), v.verdict);
  });
}

test('auto falls back to noble where WebCrypto has no Ed25519', () => {
  // A fresh process whose WebCrypto refuses Ed25519, as older WebViews do.
  const code = `
    const subtle = globalThis.crypto.subtle;
    const importKey = subtle.importKey.bind(subtle);
    subtle.importKey = (f, k, alg, ...rest) => alg?.name === 'Ed25519'
      ? Promise.reject(new DOMException('Unrecognized name', 'NotSupportedError'))
      : importKey(f, k, alg, ...rest);
    const { verdict } = await import(${JSON.stringify(new URL('./helpers.mjs', import.meta.url).href)});
    let input = '';
    for await (const chunk of process.stdin) input += chunk;
    const vs = JSON.parse(input);
    const got = [];
    for (const v of vs) got.push(await verdict(v, 'auto'));
    console.log(JSON.stringify(got));`;
  const vs = [...vectors, ...vectorsOf.slice(0, 5)];
  const out = execFileSync(process.execPath, ['--input-type=module', '-e', code], { input: JSON.stringify(vs), encoding: 'utf8' });
  assert.deepEqual(JSON.parse(out.trim().split('\n').pop()), vs.map((v) => v.verdict));
});
