/**
 * The tokens a run sends, all signed before measuring starts (signing is far slower than a
 * decision, so minting during the run would measure the generator), and the per-request pick:
 * which token, and therefore which decision to expect.
 */
import { readFile } from 'node:fs/promises';
import type { TokenIssuer } from './issuer.js';
import { authorizationArg } from './notify.js';
import type { TokenMode } from './options.js';
import { ShareSpreader } from './schedule.js';

/** What a token should produce; index into {@link EXPECTED_REASON}. */
export const TokenKind = { VALID: 0, BAD_SIGNATURE: 1, EXPIRED: 2 } as const;
export type TokenKind = (typeof TokenKind)[keyof typeof TokenKind];

/** The decision reason the agent must answer for each kind (valid: allow=true). */
export const EXPECTED_REASON: readonly string[] = ['ok', 'bad_signature', 'expired'];
export const KIND_NAMES: readonly string[] = ['valid', 'bad_signature', 'expired'];

/**
 * Upper bound of distinct tokens a `unique` run signs ahead (memory: ~0.8 kB each incl. the
 * encoded arg; time: RSA signing costs ~1 ms per token). A run needing more cycles through
 * them; each is verified again as long as the pool is larger than the agent's token cache.
 */
export function uniqueCap(alg: string): number {
  return alg.startsWith('RS') || alg.startsWith('PS') ? 20_000 : 100_000;
}

/** At most this many lines of a token file are used. */
export const LIMITS_FILE_TOKENS = 1_000_000;

export interface TokenSet {
  /** Pre-encoded `authorization` args, per kind. */
  readonly args: readonly [valid: Buffer[], badSignature: Buffer[], expired: Buffer[]];
  /** Plain tokens per kind (for files and tests). */
  readonly tokens: readonly [valid: string[], badSignature: string[], expired: string[]];
  readonly mode: TokenMode;
  /** Human summary, e.g. "unique: 50,000 valid + 5,556 invalid, ES256 (dev issuer)". */
  readonly description: string;
}

/** Breaks the signature (its first character) so verification fails with bad_signature. */
export function corruptSignature(token: string): string {
  const dot = token.lastIndexOf('.');
  if (dot < 0 || dot + 1 >= token.length) throw new TypeError('not a compact JWS');
  const c = token[dot + 1] === 'A' ? 'B' : 'A';
  return `${token.slice(0, dot + 1)}${c}${token.slice(dot + 2)}`;
}

export interface BuildTokensOptions {
  readonly mode: TokenMode;
  readonly invalidShare: number;
  /** Requests the run may send (bounds a `unique` pool); null when unknown. */
  readonly expectedRequests: number | null;
  /** Lifetime of valid tokens. */
  readonly ttlSec: number;
  /** Tokens from a file instead of signing (all expected valid; invalid ones are corrupted copies). */
  readonly fileTokens?: readonly string[] | null;
  readonly onProgress?: (done: number, total: number) => void;
}

async function signMany(
  issuer: TokenIssuer,
  count: number,
  prefix: string,
  iatSec: number,
  ttlSec: number,
  progress: () => void,
): Promise<string[]> {
  const out: string[] = new Array(count);
  // jose signs through WebCrypto, which runs on libuv's thread pool: batches use every core.
  const BATCH = 256;
  for (let i = 0; i < count; i += BATCH) {
    const n = Math.min(BATCH, count - i);
    const batch = await Promise.all(
      Array.from({ length: n }, (_, j) => issuer.sign(`${prefix}-${i + j}`, iatSec, ttlSec)),
    );
    for (let j = 0; j < n; j++) out[i + j] = batch[j]!;
    progress();
  }
  return out;
}

/** How many tokens of each kind a mode needs. */
export function tokenCounts(
  mode: TokenMode,
  invalidShare: number,
  expectedRequests: number | null,
  cap: number,
): { valid: number; invalid: number } {
  const invalidEach = (n: number) => (invalidShare > 0 ? Math.max(1, Math.ceil((n * invalidShare) / 2)) : 0);
  switch (mode.kind) {
    case 'reuse':
      return { valid: 1, invalid: invalidEach(1) };
    case 'pool':
      return { valid: mode.size, invalid: invalidEach(mode.size) };
    case 'unique': {
      const total = Math.max(1, Math.min(expectedRequests ?? cap, cap));
      return { valid: Math.max(1, Math.ceil(total * (1 - invalidShare))), invalid: invalidEach(total) };
    }
  }
}

/** Signs (or reads) every token of the run. */
export async function buildTokens(issuer: TokenIssuer | null, o: BuildTokensOptions): Promise<TokenSet> {
  const nowSec = Math.floor(Date.now() / 1000);
  const file = o.fileTokens ?? null;
  let valid: string[];
  let expired: string[] = [];
  let invalidEach: number;
  if (file !== null) {
    if (file.length === 0) throw new TypeError('the token file has no tokens');
    const cap = o.mode.kind === 'pool' ? o.mode.size : o.mode.kind === 'reuse' ? 1 : file.length;
    valid = file.slice(0, cap);
    // No key to sign expired tokens with: every invalid token has a bad signature.
    invalidEach = o.invalidShare > 0 ? Math.max(1, Math.ceil(valid.length * o.invalidShare)) : 0;
  } else {
    if (issuer === null) throw new TypeError('an issuer is needed to sign tokens');
    const counts = tokenCounts(o.mode, o.invalidShare, o.expectedRequests, uniqueCap(issuer.alg));
    invalidEach = counts.invalid;
    const total = counts.valid + counts.invalid;
    let done = 0;
    const progress = () => {
      done = Math.min(total, done + 256);
      o.onProgress?.(done, total);
    };
    valid = await signMany(issuer, counts.valid, 'load', nowSec, o.ttlSec, progress);
    // Expired an hour ago: far beyond any clock tolerance (at most 300 s).
    expired = await signMany(issuer, counts.invalid, 'load-expired', nowSec - 7_200, 3_600, progress);
  }
  const badSignature: string[] = [];
  for (let i = 0; i < invalidEach; i++) badSignature.push(corruptSignature(valid[i % valid.length]!));
  const source =
    file !== null ? 'token file' : `${issuer!.alg} (${issuer!.kind === 'dev' ? 'dev issuer' : 'own issuer'})`;
  const invalid = badSignature.length + expired.length;
  const description =
    `${describeMode(o.mode)}: ${valid.length.toLocaleString('en-US')} valid` +
    (invalid > 0 ? ` + ${invalid.toLocaleString('en-US')} invalid` : '') +
    `, ${source}`;
  return {
    args: [valid.map(authorizationArg), badSignature.map(authorizationArg), expired.map(authorizationArg)],
    tokens: [valid, badSignature, expired],
    mode: o.mode,
    description,
  };
}

function describeMode(m: TokenMode): string {
  return m.kind === 'pool' ? `pool:${m.size}` : m.kind;
}

/** Reads a token file: one token per line; blank lines and `#` comments skipped. */
export async function readTokenFile(path: string, max: number): Promise<string[]> {
  const text = await readFile(path, 'utf8');
  const out: string[] = [];
  for (const line of text.split('\n')) {
    const t = line.trim();
    if (t === '' || t.startsWith('#')) continue;
    out.push(t.startsWith('Bearer ') ? t.slice(7) : t);
    if (out.length >= max) break;
  }
  return out;
}

/**
 * Picks the token of each request: an exact invalid share (alternating bad signature and
 * expired when both exist), and round-robin within each kind.
 */
export class TokenPicker {
  /** Kind of the last pick. */
  kind: TokenKind = TokenKind.VALID;
  private readonly set: TokenSet;
  private readonly spreader: ShareSpreader;
  private readonly next3 = [0, 0, 0];
  private invalidTurn = 0;

  constructor(set: TokenSet, invalidShare: number) {
    this.set = set;
    const hasInvalid = set.args[1].length + set.args[2].length > 0;
    this.spreader = new ShareSpreader(hasInvalid ? invalidShare : 0);
  }

  /** The encoded `authorization` arg of the next request; its kind is in {@link kind}. */
  pick(): Buffer {
    let kind: TokenKind = TokenKind.VALID;
    if (this.spreader.next()) {
      const [, bad, expired] = this.set.args;
      if (expired.length === 0) kind = TokenKind.BAD_SIGNATURE;
      else if (bad.length === 0) kind = TokenKind.EXPIRED;
      else kind = this.invalidTurn++ % 2 === 0 ? TokenKind.BAD_SIGNATURE : TokenKind.EXPIRED;
    }
    this.kind = kind;
    const list = this.set.args[kind];
    const i = this.next3[kind]!;
    this.next3[kind] = i + 1 === list.length ? 0 : i + 1;
    return list[i]!;
  }
}
