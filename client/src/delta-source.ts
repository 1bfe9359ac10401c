// Where LiveUpdate fetches a build's file manifest: the CDN's copy of the
// store, or the tracker's GET /build/files. Neither is trusted: delta.ts
// checks the bytes against the signed build reference.

import type { FetchedFiles } from './delta.js';
import type { BuildRef } from './verify.js';

const trimSlash = (s: string) => s.replace(/\/+$/, '');

/**
 * A fetcher of file manifests from opts.cdn, else opts.tracker. get fails
 * on any status but 2xx and 404; a 404 or a network failure means no
 * manifest, and the zip is downloaded.
 */
export function filesFetcher(
  app: string,
  opts: { cdn?: string; tracker?: string },
  get: (url: string) => Promise<Response>,
  device: () => Promise<string>,
): (ref: BuildRef) => Promise<FetchedFiles | undefined> {
  return async (ref) => {
    try {
      if (opts.cdn) {
        const base = `${trimSlash(opts.cdn)}/apps/${app}/files/`;
        const res = await get(`${base}manifests/${ref.files_sha256}.json`);
        if (res.status === 404) return undefined;
        return { data: new Uint8Array(await res.arrayBuffer()), filesURL: base };
      }
      const q = new URLSearchParams({ id: ref.id, device: await device() });
      const res = await get(`${trimSlash(opts.tracker!)}/build/files?${q}`);
      if (res.status === 404) return undefined;
      const json = (await res.json()) as { manifest?: unknown; files_url?: unknown };
      if (typeof json.manifest !== 'string' || typeof json.files_url !== 'string') return undefined;
      return { data: new TextEncoder().encode(json.manifest), filesURL: json.files_url };
    } catch {
      return undefined;
    }
  };
}
