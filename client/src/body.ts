// Reading answers from the network: never more than a verifier reads.

/**
 * The body of res, cut after max + 1 bytes: a longer one is cancelled
 * there and left for the verifier to refuse by its size. This bounds what
 * a CDN or tracker can make the device hold, a compressed body that
 * decodes to gigabytes included.
 */
export async function readAtMost(res: Response, max: number): Promise<Uint8Array> {
  if (!res.body) return new Uint8Array(0);
  const reader = res.body.getReader();
  const chunks: Uint8Array[] = [];
  let n = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    chunks.push(value);
    n += value.length;
    if (n > max) {
      reader.cancel().catch(() => {});
      break;
    }
  }
  return concat(chunks).subarray(0, max + 1);
}

/** The bytes of chunks, one after another. */
export function concat(chunks: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.length;
  }
  return out;
}
