/**
 * The null agent's answers (bench/lib/null-answer.ts): bench:e2e row 5 allows everything, row 6
 * allows only a valid RS256 signature. A row 6 that let a forged token through would measure a
 * floor that skips the very cost it stands for.
 */
import { createPublicKey, generateKeyPairSync, sign } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { NULL_DENY, nullAnswerActions, nullHandler, rs256Holds } from '../../bench/lib/null-answer.js';
import { decodeFrame, encodeFrame, FrameType, type Notify } from '../../src/spop/index.js';

const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const other = generateKeyPairSync('rsa', { modulusLength: 2048 }).publicKey;
const b64 = (s: string) => Buffer.from(s).toString('base64url');
const input = `${b64('{"alg":"RS256","typ":"JWT"}')}.${b64('{"sub":"x"}')}`;
const token = `${input}.${sign('sha256', Buffer.from(input), privateKey).toString('base64url')}`;

function notify(authorization: string | null): Notify {
  const frame = encodeFrame({
    type: FrameType.NOTIFY,
    streamId: 1,
    frameId: 1,
    messages: [{ name: 'authorize', args: [{ name: 'authorization', value: authorization }] }],
  });
  const d = decodeFrame(frame, 4);
  if (d.type !== FrameType.NOTIFY || !('notify' in d)) throw new Error('not a NOTIFY');
  return d.notify;
}

describe('null agent answers', () => {
  const allow = nullAnswerActions();

  it.each([
    ['a valid signature', `Bearer ${token}`, true],
    ['a forged signature', `Bearer ${token.slice(0, -2)}${token.endsWith('AA') ? 'BB' : 'AA'}`, false],
    ['another payload under the signature', `Bearer ${input.slice(0, -1)}Q.${token.split('.')[2]}`, false],
    ['no Bearer scheme', token, false],
    ['no dot', 'Bearer abc', false],
    ['no header', null, false],
  ])('--verify-pem: %s', (_, authorization, ok) => {
    const key = createPublicKey(publicKey.export({ type: 'spki', format: 'pem' }));
    expect(rs256Holds(key, authorization)).toBe(ok);
    expect(nullHandler(allow, key)(notify(authorization), {} as never)).toBe(ok ? allow : NULL_DENY);
  });

  it('--verify-pem with another key denies a valid token; without a key everything is allowed', () => {
    expect(nullHandler(allow, other)(notify(`Bearer ${token}`), {} as never)).toBe(NULL_DENY);
    expect(nullHandler(allow)(notify(null), {} as never)).toBe(allow);
  });

  it('the deny is a 401 the shipped ACLs refuse', () => {
    const vars = Object.fromEntries(NULL_DENY.map((a) => [a.name, a.op === 'set' ? a.value : undefined]));
    expect(vars).toMatchObject({ allow: false, status: 401, reason: 'bad_signature' });
  });
});
