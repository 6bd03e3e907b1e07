/**
 * The `authorize` message → AuthzRequest: every arg of the shipped SPOE config, absent args,
 * both address families, and args decoded only when asked for.
 */
import { describe, expect, it } from 'vitest';
import { KNOWN_ARGS, readAuthorizeArgs } from '../../src/agent/request.js';
import {
  DataType,
  decodeFrame,
  encodeFrame,
  FrameType,
  type NamedValue,
  type NotifyMessage,
} from '../../src/spop/index.js';

function messageOf(args: readonly NamedValue[], name = 'authorize'): NotifyMessage {
  const frame = encodeFrame({
    type: FrameType.NOTIFY,
    streamId: 1,
    frameId: 1,
    messages: [{ name, args }],
  });
  const decoded = decodeFrame(frame, 4);
  if (!('notify' in decoded)) throw new Error('not a NOTIFY');
  return decoded.notify.messages[0] as NotifyMessage;
}

const FULL: NamedValue[] = [
  { name: 'method', value: 'POST' },
  { name: 'path', value: '/api/flows/filter' },
  { name: 'query', value: 'limit=5' },
  { name: 'host', value: 'prefect.example.com' },
  { name: 'authorization', value: 'Bearer abc' },
  { name: 'cookie', value: 'tok' },
  { name: 'token_header', value: 'hdr' },
  { name: 'src', value: { type: DataType.IPV4, value: '192.0.2.7' } },
  { name: 'id', value: 'req-9' },
  { name: 'prefect_ui', value: 'True' },
  { name: 'body', value: new Uint8Array([0x7b, 0x7d]) },
  { name: 'body_size', value: 2 },
  { name: 'ssl_c_used', value: true },
  { name: 'ssl_c_verify', value: 0 },
  { name: 'ssl_c_s_dn', value: '/O=Acme/CN=alice' },
  { name: 'ssl_c_sha256', value: new Uint8Array(32).fill(0xab) },
];

describe('readAuthorizeArgs', () => {
  it('reads a body only from authorize-body (the message HAProxy sends it in)', () => {
    expect(readAuthorizeArgs(messageOf(FULL))?.body).toBeNull();
    expect(readAuthorizeArgs(messageOf(FULL, 'authorize-body'))?.body).toEqual(Buffer.from('{}'));
  });

  it('reads every arg of the SPOE contract', () => {
    const req = readAuthorizeArgs(messageOf(FULL, 'authorize-body'))!;
    expect({
      method: req.method,
      path: req.path,
      query: req.query,
      host: req.host,
      authorization: req.authorization,
      cookie: req.cookie,
      tokenHeader: req.tokenHeader,
      src: req.src,
      id: req.id,
      prefectUi: req.prefectUi,
      body: req.body === null || req.body === undefined ? null : Buffer.from(req.body).toString(),
      bodySize: req.bodySize,
      clientCert: req.clientCert,
    }).toEqual({
      method: 'POST',
      path: '/api/flows/filter',
      query: 'limit=5',
      host: 'prefect.example.com',
      authorization: 'Bearer abc',
      cookie: 'tok',
      tokenHeader: 'hdr',
      src: '192.0.2.7',
      id: 'req-9',
      prefectUi: true,
      body: '{}',
      bodySize: 2,
      clientCert: {
        verified: true,
        subject: '/O=Acme/CN=alice',
        sha256: Buffer.alloc(32, 0xab).toString('base64url'),
      },
    });
    expect(KNOWN_ARGS).toEqual(FULL.map((a) => a.name));
  });

  it.each([
    ['no ssl_c_used (a plain bind, or a SPOE file without the args)', [], null],
    ['ssl_c_used false', [{ name: 'ssl_c_used', value: false }], null],
    [
      'not verified (ssl_c_verify 20), digest as 64 hex digits',
      [
        { name: 'ssl_c_used', value: true },
        { name: 'ssl_c_verify', value: 20 },
        { name: 'ssl_c_sha256', value: 'AB'.repeat(32) },
      ],
      { verified: false, subject: null, sha256: Buffer.alloc(32, 0xab).toString('base64url') },
    ],
    [
      'no ssl_c_verify is not verified; a digest of the wrong size is none',
      [
        { name: 'ssl_c_used', value: true },
        { name: 'ssl_c_sha256', value: new Uint8Array(20) },
      ],
      { verified: false, subject: null, sha256: null },
    ],
  ] as Array<[string, NamedValue[], unknown]>)('client certificate: %s', (_, args, want) => {
    const req = readAuthorizeArgs(messageOf([...FULL.slice(0, 2), ...args]))!;
    expect(req.clientCert).toEqual(want);
  });

  const cases: Array<[string, NamedValue[], Record<string, unknown>]> = [
    [
      'absent optional args are null',
      [],
      { query: null, host: null, authorization: null, src: null, id: null },
    ],
    ['NULL args (missing headers) are null', [{ name: 'cookie', value: null }], { cookie: null }],
    [
      'IPv6 src',
      [{ name: 'src', value: { type: DataType.IPV6, value: '2001:db8::1' } }],
      { src: '2001:db8::1' },
    ],
    ['string src (built by a converter)', [{ name: 'src', value: '10.0.0.1' }], { src: '10.0.0.1' }],
    ['prefect_ui other than true', [{ name: 'prefect_ui', value: 'yes' }], { prefectUi: false }],
    ['prefect_ui absent', [], { prefectUi: false }],
    ['an int where a string is expected', [{ name: 'host', value: 5 }], { host: null }],
  ];
  it.each(cases)('%s', (_label, extra, expected) => {
    const req = readAuthorizeArgs(messageOf([FULL[0]!, FULL[1]!, ...extra])) as unknown as Record<
      string,
      unknown
    >;
    for (const [k, v] of Object.entries(expected)) expect(req[k]).toEqual(v);
  });

  it('returns null without method or path, or with an empty one', () => {
    expect(readAuthorizeArgs(messageOf([FULL[0]!]))).toBeNull();
    expect(readAuthorizeArgs(messageOf([FULL[1]!]))).toBeNull();
    expect(readAuthorizeArgs(messageOf([{ name: 'method', value: '' }, FULL[1]!]))).toBeNull();
    expect(readAuthorizeArgs(messageOf([FULL[0]!, { name: 'path', value: 5 }]))).toBeNull();
  });

  it('decodes an arg only when first asked for, and once', () => {
    const msg = messageOf(FULL);
    const asked: string[] = [];
    const getString = msg.getString.bind(msg);
    msg.getString = (name: string) => {
      asked.push(name);
      return getString(name);
    };
    const req = readAuthorizeArgs(msg)!;
    expect(asked).toEqual(['method', 'path']);
    expect(req.authorization).toBe('Bearer abc');
    expect(req.authorization).toBe('Bearer abc');
    expect(req.query).toBe('limit=5');
    expect(asked).toEqual(['method', 'path', 'authorization', 'query']);
  });
});
