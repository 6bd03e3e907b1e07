import { describe, expect, it } from 'vitest';
import { AuthzEngine, devIssuerConfig } from '../../src/auth/index.js';
import { devIssuer, ownIssuer } from '../../src/load/issuer.js';
import {
  buildTokens,
  corruptSignature,
  TokenKind,
  TokenPicker,
  tokenCounts,
  uniqueCap,
} from '../../src/load/tokens.js';

const request = (token: string) => ({
  method: 'POST',
  path: '/api/work_pools/default-pool/get_scheduled_flow_runs',
  query: null,
  host: null,
  authorization: `Bearer ${token}`,
  cookie: null,
  src: '127.0.0.1',
});

describe('load tokens', () => {
  it('sizes each mode: one reused, a pool, or one per expected request up to a cap', () => {
    expect(tokenCounts({ kind: 'reuse' }, 0, null, 100)).toEqual({ valid: 1, invalid: 0 });
    expect(tokenCounts({ kind: 'reuse' }, 0.1, null, 100)).toEqual({ valid: 1, invalid: 1 });
    expect(tokenCounts({ kind: 'pool', size: 50 }, 0.2, null, 100)).toEqual({ valid: 50, invalid: 5 });
    expect(tokenCounts({ kind: 'unique' }, 0.2, 1_000, 100_000)).toEqual({ valid: 800, invalid: 100 });
    expect(tokenCounts({ kind: 'unique' }, 0, 10_000_000, 100_000)).toEqual({ valid: 100_000, invalid: 0 });
    expect(tokenCounts({ kind: 'unique' }, 0, null, 500)).toEqual({ valid: 500, invalid: 0 });
    expect(uniqueCap('RS256')).toBeLessThan(uniqueCap('ES256'));
  });

  it('breaks only the signature', () => {
    const t = 'aGVhZGVy.cGF5bG9hZA.QUJDREVGRw';
    const bad = corruptSignature(t);
    expect(bad).not.toBe(t);
    expect(bad.split('.').slice(0, 2)).toEqual(t.split('.').slice(0, 2));
    expect(corruptSignature('a.b.Axyz')).toBe('a.b.Bxyz');
  });

  it('picks an exact invalid share, alternating bad signature and expired', () => {
    const arg = (s: string) => Buffer.from(s);
    const set = {
      args: [[arg('v1'), arg('v2')], [arg('b1')], [arg('e1')]] as [Buffer[], Buffer[], Buffer[]],
      tokens: [[], [], []] as [string[], string[], string[]],
      mode: { kind: 'pool' as const, size: 2 },
      description: '',
    };
    const p = new TokenPicker(set, 0.2);
    const kinds = [0, 0, 0];
    const seen = new Set<string>();
    for (let i = 0; i < 1_000; i++) {
      seen.add(p.pick().toString());
      kinds[p.kind]!++;
    }
    expect(kinds).toEqual([800, 100, 100]);
    expect([...seen].sort()).toEqual(['b1', 'e1', 'v1', 'v2']);
  });

  it('signs dev tokens the agent accepts, and invalid ones it refuses for the expected reason', async () => {
    const set = await buildTokens(devIssuer(), {
      mode: { kind: 'pool', size: 3 },
      invalidShare: 0.5,
      expectedRequests: null,
      ttlSec: 600,
    });
    expect(set.tokens.map((t) => t.length)).toEqual([3, 1, 1]);
    const engine = AuthzEngine.create({ issuers: [devIssuerConfig()] });
    await engine.start();
    try {
      for (const t of set.tokens[TokenKind.VALID])
        expect((await engine.decide(request(t))).reason).toBe('ok');
      expect((await engine.decide(request(set.tokens[TokenKind.BAD_SIGNATURE][0]!))).reason).toBe(
        'bad_signature',
      );
      expect((await engine.decide(request(set.tokens[TokenKind.EXPIRED][0]!))).reason).toBe('expired');
    } finally {
      engine.close();
    }
  });

  it.each(['RS256', 'PS256', 'ES384', 'EdDSA', 'HS256'] as const)(
    'runs its own %s issuer whose agent config verifies its tokens',
    async (alg) => {
      const issuer = await ownIssuer(alg);
      const dir = await import('node:fs/promises').then((fs) => fs.mkdtemp('/tmp/load-issuer-'));
      const config = await issuer.agentConfig(dir);
      const engine = AuthzEngine.create(config);
      await engine.start();
      try {
        const token = await issuer.sign('load-0', Math.floor(Date.now() / 1000), 600);
        expect(JSON.parse(Buffer.from(token.split('.')[0]!, 'base64url').toString()).alg).toBe(alg);
        const d = await engine.decide(request(token));
        expect([d.allow, d.reason, d.role]).toEqual([true, 'ok', 'worker']);
        expect((await engine.decide(request(corruptSignature(token)))).reason).toBe('bad_signature');
        if (!alg.startsWith('HS')) expect(issuer.publicPem).toMatch(/^-----BEGIN PUBLIC KEY-----/);
      } finally {
        engine.close();
        await import('node:fs/promises').then((fs) => fs.rm(dir, { recursive: true }));
      }
    },
  );

  it('uses a token file as given, corrupting copies for the invalid share', async () => {
    const set = await buildTokens(null, {
      mode: { kind: 'unique' },
      invalidShare: 0.5,
      expectedRequests: null,
      ttlSec: 600,
      fileTokens: ['a.b.c', 'd.e.f'],
    });
    expect(set.tokens[TokenKind.VALID]).toEqual(['a.b.c', 'd.e.f']);
    expect(set.tokens[TokenKind.BAD_SIGNATURE]).toEqual(['a.b.A']);
    expect(set.tokens[TokenKind.EXPIRED]).toEqual([]);
  });
});
