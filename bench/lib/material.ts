/**
 * The RS256 issuer of rows 2 and 4: a key pair (PEM for HAProxy, JWKS for the agent) and a file
 * of pre-signed tokens. RSA signing costs ~1 ms per token, so the material is kept in
 * .tmp/bench-e2e/ and reused for a day.
 */
import { mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { DEV_AUDIENCE } from '../../src/auth/index.js';
import { buildTokens, ownIssuer } from '../../src/load/index.js';

export const ISSUER = 'urn:spoe-authz:load';
export const AUDIENCE = DEV_AUDIENCE;

export interface Material {
  readonly jwksPath: string;
  readonly pemPath: string;
  /** One valid token. */
  readonly reuseFile: string;
  /** `count` distinct valid tokens, one per line. */
  readonly uniqueFile: string;
  readonly count: number;
  readonly validToken: string;
  /** The agent's issuer entry (jwks-file). */
  readonly issuerConfig: Record<string, unknown>;
}

const MAX_AGE_MS = 24 * 3600 * 1000;
const TTL_SEC = 48 * 3600;

export async function rs256Material(dir: string, count: number, log: (s: string) => void): Promise<Material> {
  await mkdir(dir, { recursive: true });
  const metaPath = join(dir, 'material.json');
  const m: Material = {
    jwksPath: join(dir, 'rs256.jwks.json'),
    pemPath: join(dir, 'rs256.pub.pem'),
    reuseFile: join(dir, 'tokens-reuse.txt'),
    uniqueFile: join(dir, 'tokens-unique.txt'),
    count,
    validToken: '',
    issuerConfig: {},
  };
  const issuerConfig = (jwksPath: string) => ({
    id: 'bench',
    issuer: ISSUER,
    audiences: [AUDIENCE],
    algorithms: ['RS256'],
    keys: { type: 'jwks-file', path: jwksPath },
    roles: { claims: ['roles'], passthrough: true },
  });
  try {
    const meta = JSON.parse(await readFile(metaPath, 'utf8')) as { count: number; createdAt: number };
    await stat(m.uniqueFile);
    if (meta.count === count && Date.now() - meta.createdAt < MAX_AGE_MS) {
      const validToken = (await readFile(m.reuseFile, 'utf8')).trim();
      log(
        `reusing ${count.toLocaleString('en-US')} RS256 tokens from ${dir} (signed ${new Date(meta.createdAt).toISOString()})`,
      );
      return { ...m, validToken, issuerConfig: issuerConfig(m.jwksPath) };
    }
  } catch {
    // nothing cached yet
  }
  const issuer = await ownIssuer('RS256');
  log(`signing ${count.toLocaleString('en-US')} RS256 tokens ahead of time (~1 ms each)...`);
  const started = Date.now();
  const set = await buildTokens(issuer, {
    mode: { kind: 'pool', size: count },
    invalidShare: 0,
    expectedRequests: null,
    ttlSec: TTL_SEC,
  });
  const tokens = set.tokens[0];
  log(`signed in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  await writeFile(m.jwksPath, `${JSON.stringify(issuer.jwks, null, 2)}\n`);
  await writeFile(m.pemPath, issuer.publicPem!);
  await writeFile(m.reuseFile, `${tokens[0]}\n`);
  await writeFile(m.uniqueFile, `${tokens.join('\n')}\n`);
  await writeFile(metaPath, JSON.stringify({ count, createdAt: Date.now() }));
  return { ...m, validToken: tokens[0]!, issuerConfig: issuerConfig(m.jwksPath) };
}
