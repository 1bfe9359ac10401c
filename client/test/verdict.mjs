// How a harness runs one vector of the shared table (docs/format.md,
// "Test vectors"), with web APIs only, so that the same code runs in Node
// and in a browser. Not a test file itself.

const utf8 = (s) => new TextEncoder().encode(s);
const base64 = (s) => Uint8Array.from(atob(s), (c) => c.charCodeAt(0));

/**
 * Runs vector v with the client module m (its exports) and the Ed25519
 * implementation impl; returns "ok" or the rule that failed. asObject
 * passes the envelopes parsed. A result that differs is thrown.
 */
export async function runVector(m, v, impl, asObject = false) {
  const form = (s) => (asObject ? JSON.parse(s) : s);
  try {
    await run(m, v, impl, form);
    return 'ok';
  } catch (e) {
    if (e instanceof m.VerifyError) return e.rule;
    throw e;
  }
}

async function run(m, v, impl, form) {
  if (v.kind === 'cohort') {
    const c = v.cohort;
    const got = await m.cohort(c.app, c.channel, c.rollout, c.device);
    if (got !== c.bucket) throw new Error(`bucket ${got}, want ${c.bucket}`);
    return;
  }
  const trust = { roots: v.root_keys, threshold: v.threshold, ed25519: impl };
  const exp = { app: v.expect.app, channel: v.expect.channel, minACLVersion: v.expect.min_acl_version, minSequence: v.expect.min_sequence, now: new Date(v.expect.now) };
  if (v.kind === 'history') {
    const acl = await m.verifyACL(trust, form(v.acl), exp.minACLVersion);
    await m.verifyHistory(acl, exp.app, exp.channel, v.history.map(utf8), impl);
    return;
  }
  const { latest } = await m.verifyLatest(trust, form(v.acl), form(v.latest), exp);
  await checkResult(m, v, latest);
  if (v.bundle) await m.verifyBundle(latest.build, base64(v.bundle));
  if (v.files_patch) {
    await m.applyFilesPatch(latest.build, latest.app, utf8(v.files_patch.base), utf8(v.files_patch.patch));
    return;
  }
  if (v.files_stored) {
    await m.readFileManifest(latest.build, latest.app, base64(v.files_stored));
    return;
  }
  if (v.files_manifest) {
    const fm = await m.checkFileManifest(latest.build, latest.app, utf8(v.files_manifest));
    if (v.file) await m.verifyFile(fm.files[v.file.index], base64(v.file.content));
  }
}

// Results are not verdicts: a difference is thrown as a plain error.
async function checkResult(m, v, latest) {
  if (v.result) {
    const got = { sequence: latest.sequence, build: latest.build.number, candidate: latest.candidate?.build.number ?? 0 };
    if (JSON.stringify(got) !== JSON.stringify(v.result)) throw new Error(`result ${JSON.stringify(got)}, want ${JSON.stringify(v.result)}`);
  }
  if (v.device) {
    const s = await m.selectBuild(latest, v.device.native, v.device.id);
    const n = s.build?.number ?? 0;
    if (s.reason !== v.device.reason || n !== v.device.build) throw new Error(`selected ${s.reason} build ${n}, want ${v.device.reason} build ${v.device.build}`);
  }
}
