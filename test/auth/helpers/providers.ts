/**
 * Provider-shaped tokens for the profile tests: the shapes in test/fixtures/providers/*.json
 * signed with test keys, in each provider's encoding (compact JWS, or the AWS ALB's padded
 * base64url), and a fetch that sends each provider's real URLs to one loopback server.
 */
import { sign as cryptoSign, KeyObject, type webcrypto } from 'node:crypto';
import { readFileSync } from 'node:fs';
import * as jose from 'jose';
import { parse as parseYaml } from 'yaml';
import type { FetchLike } from '../../../src/auth/keys/http-fetch.js';
import { makeKey, type TestKey } from './keys.js';

const FIXTURES = new URL('../../fixtures/providers/', import.meta.url);
const README = new URL('../../../README.md', import.meta.url);

/** The YAML block after `<!-- provider-block: name -->` in the README: what users copy is what runs. */
export function readmeBlock(name: string): Record<string, unknown> {
  const text = readFileSync(README, 'utf8');
  const marker = `<!-- provider-block: ${name} -->`;
  const at = text.indexOf(marker);
  if (at < 0) throw new Error(`README has no ${marker}`);
  const m = /```yaml\n([\s\S]*?)```/.exec(text.slice(at));
  if (m === null) throw new Error(`no yaml block after ${marker}`);
  return parseYaml(m[1] as string) as Record<string, unknown>;
}

export interface TokenExpectation {
  readonly allow: boolean;
  readonly reason?: string;
  readonly sub?: string;
  readonly roles?: readonly string[];
}

export interface TokenCase {
  readonly why?: string;
  /** Another case this one starts from; `header`/`payload` members then replace its (null deletes). */
  readonly base?: string;
  readonly header?: Record<string, unknown>;
  readonly payload?: Record<string, unknown>;
  /** Change the payload after signing. */
  readonly tamper?: boolean;
  readonly expect: TokenExpectation;
}

export interface ProviderFixture {
  readonly profile: string;
  readonly source: string;
  readonly issuer: string;
  readonly tokens: Readonly<Record<string, TokenCase>>;
  readonly [key: string]: unknown;
}

export function loadProviderFixture(name: string): ProviderFixture {
  return JSON.parse(readFileSync(new URL(`${name}.json`, FIXTURES), 'utf8')) as ProviderFixture;
}

export interface TokenShape {
  readonly header: Record<string, unknown>;
  readonly payload: Record<string, unknown>;
  readonly tamper: boolean;
}

function merge(
  base: Record<string, unknown>,
  over: Record<string, unknown> | undefined,
): Record<string, unknown> {
  const out = { ...base };
  for (const [k, v] of Object.entries(over ?? {})) {
    if (v === null) delete out[k];
    else out[k] = v;
  }
  return out;
}

/** "@+60" -> now + 60, "@kid" -> kid, recursively. */
function resolve(value: unknown, nowS: number, kid: string): unknown {
  if (typeof value === 'string') {
    if (value === '@kid') return kid;
    const m = /^@([+-]\d+)$/.exec(value);
    return m ? nowS + Number(m[1]) : value;
  }
  if (Array.isArray(value)) return value.map((v) => resolve(v, nowS, kid));
  if (typeof value === 'object' && value !== null) {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, resolve(v, nowS, kid)]));
  }
  return value;
}

/** The header and claims of case `name`, with its base's applied, times relative to `nowS`. */
export function tokenShape(fixture: ProviderFixture, name: string, nowS: number, kid: string): TokenShape {
  const c = fixture.tokens[name];
  if (c === undefined) throw new TypeError(`no token case ${name} in ${fixture.profile}`);
  const base =
    c.base === undefined
      ? { header: {}, payload: {}, tamper: false }
      : tokenShape(fixture, c.base, nowS, kid);
  return {
    header: resolve(merge(base.header, c.header), nowS, kid) as Record<string, unknown>,
    payload: resolve(merge(base.payload, c.payload), nowS, kid) as Record<string, unknown>,
    tamper: c.tamper === true,
  };
}

function tamperPayload(token: string): string {
  const [h, p, s] = token.split('.') as [string, string, string];
  const claims = JSON.parse(Buffer.from(p, 'base64url').toString('utf8')) as Record<string, unknown>;
  claims.sub = 'someone-else';
  return `${h}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}.${s}`;
}

/** A compact JWS (RFC 7515 7.1) with exactly this protected header. */
export async function signCompact(shape: TokenShape, key: TestKey): Promise<string> {
  const token = await new jose.CompactSign(new TextEncoder().encode(JSON.stringify(shape.payload)))
    .setProtectedHeader(shape.header as jose.CompactJWSHeaderParameters)
    .sign(key.privateKey);
  return shape.tamper ? tamperPayload(token) : token;
}

/** base64url WITH `=` padding, as the ALB encodes each part. */
function padded(bytes: Buffer): string {
  const b = bytes.toString('base64url');
  return b + '='.repeat((4 - (b.length % 4)) % 4);
}

/**
 * `x-amzn-oidc-data` as an ALB sends it: each part base64url with padding, the ES256 signature
 * (R || S) over the padded `header.payload` as sent.
 */
export function signAlb(shape: TokenShape, key: TestKey): string {
  const h = padded(Buffer.from(JSON.stringify(shape.header)));
  let p = padded(Buffer.from(JSON.stringify(shape.payload)));
  const privateKey = KeyObject.from(key.privateKey as unknown as webcrypto.CryptoKey);
  const sig = cryptoSign('sha256', Buffer.from(`${h}.${p}`), { key: privateKey, dsaEncoding: 'ieee-p1363' });
  if (shape.tamper) p = padded(Buffer.from(JSON.stringify({ ...shape.payload, sub: 'someone-else' })));
  return `${h}.${p}.${padded(sig)}`;
}

/** The SPKI PEM of a test key (the ALB key endpoint's format). */
export async function publicPem(key: TestKey): Promise<string> {
  return jose.exportSPKI(key.publicKey);
}

/**
 * fetch for the engine: a request to one of `origins` (a provider's real https origin) goes to
 * the loopback server instead, under a path prefix naming the host, so each provider's
 * documents live at their real paths: https://sso.example.com/x -> <loopback>/sso.example.com/x.
 * Anything else is refused, so a test can never reach the network.
 */
export function loopbackFetch(loopbackOrigin: string, seen?: string[]): FetchLike {
  return (input, init) => {
    const url = new URL(input);
    seen?.push(input);
    if (url.protocol === 'https:') {
      return fetch(`${loopbackOrigin}/${url.host}${url.pathname}${url.search}`, init);
    }
    if (input.startsWith(loopbackOrigin)) return fetch(input, init);
    return Promise.reject(new TypeError(`test fetch: ${input} is not a provider URL`));
  };
}

/** Where loopbackFetch serves `url` from: the path to give the server's setDocument. */
export function loopbackPath(url: string): string {
  const u = new URL(url);
  return `/${u.host}${u.pathname}`;
}

const pairs = new Map<string, Promise<TestKey>>();

/**
 * A test key for `alg` under `kid`. One key pair per algorithm is generated per test file and
 * shared (RSA generation costs about a second on a small machine); each provider still publishes
 * its own kid and documents.
 */
export async function providerKey(alg: 'RS256' | 'ES256' | 'ES384', kid: string): Promise<TestKey> {
  let pair = pairs.get(alg);
  if (pair === undefined) {
    pair = makeKey(alg, 'shared');
    pairs.set(alg, pair);
  }
  const k = await pair;
  return { ...k, kid, jwk: { ...k.jwk, kid } };
}
