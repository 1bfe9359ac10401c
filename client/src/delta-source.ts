// Where LiveUpdate fetches a build's file manifest, or a patch to it from
// the remembered one: the CDN's copy of the store, or the tracker's GET
// /build/files. Neither is trusted: delta.ts checks the bytes against the
// signed build reference.

import { readAtMost } from './body.js';
import type { FetchedFiles } from './delta.js';
import { canReadStored } from './files.js';
import { MAX_FILE_MANIFEST_SIZE, type BuildRef } from './verify.js';

const trimSlash = (s: string) => s.replace(/\/+$/, '');

/**
 * A fetcher of file manifests from opts.cdn, else opts.tracker. get fails
 * on any status but 2xx and 404; a 404 or a network failure means no
 * manifest, and the zip is downloaded. With from (the SHA-256 of the
 * remembered manifest) it asks for the patch from that manifest: the CDN
 * has it or not (undefined); the tracker answers the patch, or the whole
 * manifest when it has none. A manifest the CDN holds gzip-compressed (a
 * folder store's web server sends it so) on a platform without
 * DecompressionStream is asked of the tracker, or not found without one.
 */
export function filesFetcher(
  app: string,
  opts: { cdn?: string; tracker?: string },
  get: (url: string) => Promise<Response>,
  device: () => Promise<string>,
): (ref: BuildRef, from?: string) => Promise<FetchedFiles | undefined> {
  return async (ref, from) => {
    try {
      if (opts.cdn) {
        const base = `${trimSlash(opts.cdn)}/apps/${app}/files/`;
        const res = await get(from ? `${base}patches/${from}-${ref.files_sha256}.json` : `${base}manifests/${ref.files_sha256}.json`);
        if (res.status === 404) return undefined;
        // A stored form is at most files_size bytes; a patch at most MAX_FILE_MANIFEST_SIZE.
        const data = await readAtMost(res, from ? MAX_FILE_MANIFEST_SIZE : ref.files_size);
        if (canReadStored(data)) return { data, filesURL: base, patch: !!from };
        if (!opts.tracker) return undefined;
      }
      const q = new URLSearchParams({ id: ref.id, device: await device(), ...(from ? { from } : {}) });
      const res = await get(`${trimSlash(opts.tracker!)}/build/files?${q}`);
      if (res.status === 404) return undefined;
      // A byte of the manifest is at most 6 in its JSON string.
      const text = new TextDecoder().decode(await readAtMost(res, 6 * MAX_FILE_MANIFEST_SIZE + 4096));
      const json = JSON.parse(text) as { manifest?: unknown; patch?: unknown; files_url?: unknown };
      if (typeof json.files_url !== 'string') return undefined;
      if (from && typeof json.patch === 'string') return { data: new TextEncoder().encode(json.patch), filesURL: json.files_url, patch: true };
      if (typeof json.manifest !== 'string') return undefined;
      return { data: new TextEncoder().encode(json.manifest), filesURL: json.files_url, patch: false };
    } catch {
      return undefined;
    }
  };
}
