// Strict JSON decoding, as docs/format.md ("Decoding rules") defines it and
// manifest/strict.go implements it, so that both verifiers reach the same
// verdict on any input. What differs from JSON.parse:
//   - a repeated key in any object is an error;
//   - null is an error anywhere;
//   - arrays and objects nest at most 64 deep;
//   - escapes of lone surrogates (\ud800) are errors;
//   - object keys match struct fields exactly; a key that equals a field name
//     only when case is ignored is an error; other unknown keys are ignored;
//   - a field is required unless marked optional;
//   - integers are 0 to 2^53-1 written without sign, fraction, exponent or
//     leading zero; times are YYYY-MM-DDTHH:MM:SS[.1-9 digits]Z;
//   - bytes are standard padded base64 with zero unused bits.
// Any error is reported by the callers as "malformed".

/** A parsed JSON value. */
export type Node =
  | { k: 'bool'; v: boolean }
  | { k: 'num'; raw: string }
  | { k: 'str'; v: string }
  | { k: 'arr'; items: Node[] }
  | { k: 'obj'; entries: [string, Node][] };

const MAX_DEPTH = 64;
const WS = /[ \t\n\r]*/y;
const NUM = /-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?/y;
const STR = /"(?:[^"\\\u0000-\u001f]|\\["\\/bfnrt]|\\u[0-9a-fA-F]{4})*"/y;
const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

/** Parses text, which must be one JSON value with optional whitespace around it. */
export function parse(text: string): Node {
  if (LONE_SURROGATE.test(text)) throw new SyntaxError('not valid Unicode text');
  let i = 0;
  const fail = (what: string): never => {
    throw new SyntaxError(`${what} at offset ${i}`);
  };
  const ws = () => {
    WS.lastIndex = i;
    WS.exec(text);
    i = WS.lastIndex;
  };
  const string = (): string => {
    STR.lastIndex = i;
    const m = STR.exec(text);
    if (!m) return fail('invalid string');
    i = STR.lastIndex;
    const v = JSON.parse(m[0]) as string;
    if (LONE_SURROGATE.test(v)) fail('lone surrogate escape');
    return v;
  };
  const value = (depth: number): Node => {
    ws();
    const c = text[i];
    if (c === '{' || c === '[') {
      if (depth >= MAX_DEPTH) fail(`nested more than ${MAX_DEPTH} deep`);
      return container(depth);
    }
    if (c === '"') return { k: 'str', v: string() };
    for (const [lit, v] of [['true', true], ['false', false]] as const) {
      if (text.startsWith(lit, i)) {
        i += lit.length;
        return { k: 'bool', v };
      }
    }
    if (text.startsWith('null', i)) fail('null is not allowed');
    NUM.lastIndex = i;
    const m = NUM.exec(text);
    if (!m) return fail('invalid value');
    i = NUM.lastIndex;
    return { k: 'num', raw: m[0] };
  };
  // Recursion is bounded by MAX_DEPTH.
  const container = (depth: number): Node => {
    const obj = text[i++] === '{';
    const closer = obj ? '}' : ']';
    const items: Node[] = [];
    const entries: [string, Node][] = [];
    const seen = new Set<string>();
    ws();
    if (text[i] === closer) {
      i++;
      return obj ? { k: 'obj', entries } : { k: 'arr', items };
    }
    for (;;) {
      if (obj) {
        ws();
        if (text[i] !== '"') fail('expected a key');
        const key = string();
        if (seen.has(key)) fail(`duplicate key ${JSON.stringify(key)}`);
        seen.add(key);
        ws();
        if (text[i++] !== ':') fail("expected ':'");
        entries.push([key, value(depth + 1)]);
      } else {
        items.push(value(depth + 1));
      }
      ws();
      const d = text[i++];
      if (d === ',') continue;
      if (d === closer) return obj ? { k: 'obj', entries } : { k: 'arr', items };
      fail(`expected ',' or '${closer}'`);
    }
  };
  const out = value(0);
  ws();
  if (i < text.length) fail('data after the JSON value');
  return out;
}

// ---------------------------------------------------------------------------
// Decoders: each takes a node and the path of the value (for messages).

export type Decoder<T> = (n: Node, path: string) => T;

function want(path: string, what: string): never {
  throw new TypeError(`${path.replace(/^\./, '')}: want ${what}`);
}

export const str: Decoder<string> = (n, p) => (n.k === 'str' ? n.v : want(p, 'a string'));

export const bool: Decoder<boolean> = (n, p) => (n.k === 'bool' ? n.v : want(p, 'true or false'));

/** The largest integer a payload may carry, 2^53-1 (manifest.MaxInt). */
export const MAX_INT = Number.MAX_SAFE_INTEGER;

export const int: Decoder<number> = (n, p) => {
  if (n.k !== 'num' || !/^(?:0|[1-9][0-9]{0,15})$/.test(n.raw) || Number(n.raw) > MAX_INT) {
    return want(p, `an integer from 0 to ${MAX_INT}`);
  }
  return Number(n.raw);
};

/** A time in its one written form; the value kept is the text. */
export const time: Decoder<string> = (n, p) => (n.k === 'str' && parseTime(n.v) !== null ? n.v : want(p, 'a time written as YYYY-MM-DDTHH:MM:SS[.fraction]Z'));

export const bytes: Decoder<Uint8Array> = (n, p) => {
  if (n.k !== 'str') return want(p, 'standard padded base64');
  try {
    return decodeBase64(n.v);
  } catch {
    return want(p, 'standard padded base64');
  }
};

export function slice<T>(elem: Decoder<T>): Decoder<T[]> {
  return (n, p) => (n.k === 'arr' ? n.items.map((item, i) => elem(item, `${p}[${i}]`)) : want(p, 'an array'));
}

/** map[string]T, as a null-prototype object. */
export function map<T>(elem: Decoder<T>): Decoder<Record<string, T>> {
  return (n, p) => {
    if (n.k !== 'obj') return want(p, 'an object');
    const out = Object.create(null) as Record<string, T>;
    for (const [key, v] of n.entries) out[key] = elem(v, `${p}.${key}`);
    return out;
  };
}

/** An optional field: absent means dflt(). */
export interface Optional<T> {
  dec: Decoder<T>;
  dflt: () => T;
}

export const opt = <T>(dec: Decoder<T>, dflt: () => T): Optional<T> => ({ dec, dflt });

const isOptional = <T>(d: Decoder<T> | Optional<T>): d is Optional<T> => typeof d !== 'function';
const decoderOf = <T>(d: Decoder<T> | Optional<T>): Decoder<T> => (isOptional(d) ? d.dec : d);

type Fields<T> = { [K in keyof T]: Decoder<T[K]> | Optional<T[K]> };

/** A struct with the given JSON field names. */
export function struct<T extends object>(fields: Fields<T>): Decoder<T> {
  const names = Object.keys(fields) as (keyof T & string)[];
  const byFold = new Map(names.map((name) => [fold(name), name]));
  return (n, p) => {
    if (n.k !== 'obj') return want(p, 'an object');
    const out = {} as T;
    const found = new Set<string>();
    for (const [key, v] of n.entries) {
      const f = Object.hasOwn(fields, key) ? (key as keyof T & string) : undefined;
      if (f === undefined) {
        const folded = byFold.get(fold(key));
        if (folded !== undefined) throw new TypeError(`${p.replace(/^\./, '')}: key ${JSON.stringify(key)} is not ${JSON.stringify(folded)}: field names are case-sensitive`);
        continue; // unknown keys are ignored
      }
      const d = fields[f];
      out[f] = decoderOf(d)(v, `${p}.${key}`);
      found.add(key);
    }
    for (const name of names) {
      if (found.has(name)) continue;
      const d = fields[name];
      if (!isOptional(d)) throw new TypeError(`${p.replace(/^\./, '')}: missing field ${JSON.stringify(name)}`);
      out[name] = d.dflt();
    }
    return out;
  };
}

// ASCII letters compared without case, U+212A read as k and U+017F as s.
function fold(s: string): string {
  return s.replace(/[A-Z\u212a\u017f]/g, (c) => (c === '\u212a' ? 'k' : c === '\u017f' ? 's' : c.toLowerCase()));
}

// ---------------------------------------------------------------------------
// Base64: standard alphabet, padded, unused bits zero, nothing else.

const B64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
const B64_SHAPE = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

export function decodeBase64(s: string): Uint8Array {
  if (!B64_SHAPE.test(s)) throw new TypeError('illegal base64 data');
  const body = s.replace(/=+$/, '');
  const pad = s.length - body.length;
  if (pad > 0 && B64.indexOf(body[body.length - 1]) & (pad === 2 ? 0x0f : 0x03)) throw new TypeError('illegal base64 data: unused bits set');
  const out = new Uint8Array((body.length * 3) >> 2);
  let bits = 0;
  let acc = 0;
  let j = 0;
  for (const c of body) {
    acc = ((acc << 6) | B64.indexOf(c)) & 0xffffff;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out[j++] = (acc >> bits) & 0xff;
    }
  }
  return out;
}

export function encodeBase64(b: Uint8Array): string {
  let s = '';
  for (let i = 0; i < b.length; i += 3) {
    const n = (b[i] << 16) | ((b[i + 1] ?? 0) << 8) | (b[i + 2] ?? 0);
    s += B64[n >> 18] + B64[(n >> 12) & 63];
    s += i + 1 < b.length ? B64[(n >> 6) & 63] : '=';
    s += i + 2 < b.length ? B64[n & 63] : '=';
  }
  return s;
}

// ---------------------------------------------------------------------------
// Times: RFC 3339 in UTC, YYYY-MM-DDTHH:MM:SS with an optional fraction of 1
// to 9 digits, then Z; a real calendar date, hours 00-23, no leap second.

const TIME = /^([0-9]{4})-([0-9]{2})-([0-9]{2})T([0-9]{2}):([0-9]{2}):([0-9]{2})(?:\.([0-9]{1,9}))?Z$/;

/** Nanoseconds since the Unix epoch, or null if s is not a time in the format's form. */
export function parseTime(s: string): bigint | null {
  const m = TIME.exec(s);
  if (!m) return null;
  const [year, month, day, hour, min, sec] = m.slice(1, 7).map(Number);
  const daysIn = [31, year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0) ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
  if (month < 1 || month > 12 || day < 1 || day > daysIn[month - 1] || hour > 23 || min > 59 || sec > 59) return null;
  const nanos = BigInt(((m[7] ?? '') + '000000000').slice(0, 9));
  const seconds = daysFromCivil(year, month, day) * 86400 + hour * 3600 + min * 60 + sec;
  return BigInt(seconds) * 1_000_000_000n + nanos;
}

// Days from 1970-01-01 to the given proleptic Gregorian date.
function daysFromCivil(y: number, m: number, d: number): number {
  y -= m <= 2 ? 1 : 0;
  const era = Math.floor(y / 400);
  const yoe = y - era * 400;
  const doy = Math.floor((153 * (m + (m > 2 ? -3 : 9)) + 2) / 5) + d - 1;
  const doe = yoe * 365 + Math.floor(yoe / 4) - Math.floor(yoe / 100) + doy;
  return era * 146097 + doe - 719468;
}
