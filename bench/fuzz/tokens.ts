/**
 * The fuzzer's tokens and the "valid token" test: an allow is only ever acceptable for a
 * NOTIFY that carries one of the tokens this tool signed as valid.
 */
import type { DecodedFrame } from '../../src/spop/index.js';

const B64URL = /^[A-Za-z0-9_-]*$/;

/** The three decoded parts of a compact JWS, or null when it is not one in base64url. */
function parts(token: string): Buffer[] | null {
  const p = token.split('.');
  if (p.length !== 3 || !p.every((x) => B64URL.test(x))) return null;
  return p.map((x) => Buffer.from(x, 'base64url'));
}

export class ValidTokens {
  private readonly exact = new Set<string>();
  /** Decoded parts joined: the same token with other unused trailing bits in a base64url part. */
  private readonly decoded = new Set<string>();

  constructor(tokens: readonly string[]) {
    for (const t of tokens) {
      this.exact.add(t);
      const p = parts(t);
      if (p !== null) this.decoded.add(p.map((x) => x.toString('hex')).join('.'));
    }
  }

  /** True when `token` is one of ours (exactly, or with the same bytes under base64url). */
  has(token: string): boolean {
    if (this.exact.has(token)) return true;
    const p = parts(token);
    return p !== null && this.decoded.has(p.map((x) => x.toString('hex')).join('.'));
  }

  /** True when a decoded NOTIFY carries a valid token in an `authorization: Bearer` arg. */
  inNotify(f: DecodedFrame): boolean {
    if (!('notify' in f)) return false;
    for (const m of f.notify.messages) {
      for (const a of m) {
        if (a.name !== 'authorization' || typeof a.value !== 'string') continue;
        const match = /^bearer[ \t]+(.+)$/i.exec(a.value.trim());
        if (match !== null && this.has(match[1]!.trim())) return true;
      }
    }
    return false;
  }

  /** True when any of our valid tokens appears in `bytes` (for streams cut differently than sent). */
  inBytes(bytes: Buffer): boolean {
    for (const t of this.exact) if (bytes.includes(t)) return true;
    return false;
  }
}
