/**
 * The path-confusion table: requests a server between HAProxy and Prefect could route or read
 * differently from the way the policy judges them, each decided for a viewer, an admin and a
 * request without a token, through the engine and the Prefect preset. What two reasonable
 * servers could route differently is `bad_request` for everyone; what every server reads the
 * same way (escaped unreserved characters, dot segments, repeated slashes: normalised, and the
 * normalised path is what HAProxy forwards) is judged as that path. A sample goes through real
 * HAProxy in test/e2e/path-confusion.test.ts.
 */
import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import type { AuthzEngine, Reason } from '../../../src/auth/index.js';
import { testEngine } from '../helpers/engine.js';
import { makeKey, NOW_MS, sign } from '../helpers/keys.js';
import { request } from '../helpers/request.js';

type Verdict = readonly [viewer: Reason, admin: Reason, none: Reason];

const B: Verdict = ['bad_request', 'bad_request', 'bad_request'];
/** /api/admin/settings: admins only. */
const SETTINGS: Verdict = ['forbidden', 'ok', 'missing_token'];
/** An API read any viewer may make. */
const READ: Verdict = ['ok', 'ok', 'missing_token'];
/** Open to anyone: health routes and the UI shell. */
const OPEN: Verdict = ['ok', 'ok', 'ok'];

type Row = readonly [what: string, method: string, path: string, query: string | null, expected: Verdict];

const get = (what: string, path: string, expected: Verdict, query: string | null = null): Row => [
  what,
  'GET',
  path,
  query,
  expected,
];
const BD = '/api/block_documents/0b5c6d1e-0000-4000-8000-000000000001';

const PATH_CONFUSION_TABLE: readonly Row[] = [
  // Baselines.
  get('the admin route', '/api/admin/settings', SETTINGS),
  get('an API read', '/api/flows/abc', READ),
  get('health', '/api/health', OPEN),
  get('the UI shell', '/', OPEN),
  get('the UI shell, a route', '/flows', OPEN),
  get('ui-settings', '/ui-settings', OPEN),
  get('a UI asset', '/assets/index-3Fa9.js', OPEN),
  get('any valid token', '/api/admin/version', ['ok', 'ok', 'missing_token']),
  ['HEAD like GET', 'HEAD', '/api/admin/settings', null, SETTINGS],
  ['a read-only POST', 'POST', '/api/flows/filter', null, READ],
  // Matrix and path parameters.
  get('parameter after the last segment', '/api/admin/settings;x=1', B),
  get('parameter inside the path', '/api/admin;x=1/settings', B),
  get('parameter on the base path', '/api;/admin/settings', B),
  get('empty parameter', '/api/admin/settings;', B),
  get('encoded ;', '/api/admin/settings%3Bx=1', B),
  get('encoded ; lower-case hex', '/api/admin/settings%3bx=1', B),
  get('Tomcat ..; traversal', '/api/flows/..;/admin/settings', B),
  get('jsessionid', '/api/flows/abc;jsessionid=1', B),
  ['parameter on a read-only POST', 'POST', '/api/flows/filter;x', null, B],
  // Case variants.
  get('all upper case', '/API/ADMIN/SETTINGS', B),
  get('base path capitalised', '/Api/admin/settings', B),
  get('one segment upper case', '/api/ADMIN/settings', B),
  get('last segment capitalised', '/api/admin/Settings', B),
  get('mixed case', '/api/Admin/Settings', B),
  get('upper case, trailing slash', '/api/admin/SETTINGS/', B),
  get('health, base path upper case', '/API/health', B),
  get('health upper case', '/api/HEALTH', B),
  get('the base path alone, upper case', '/API', B),
  get('a resource name capitalised', '/api/Flows/abc', B),
  get('an id in upper case is a parameter', '/api/flows/ABC', READ),
  get('a UI route in another case', '/Flows', B),
  ['upper-case base path on a POST', 'POST', '/API/flows/filter', null, B],
  ['HEAD, upper case', 'HEAD', '/API/ADMIN/SETTINGS', null, B],
  ['method in lower case', 'get', '/api/flows/abc', null, B],
  ['method in mixed case', 'Post', '/api/flows/filter', null, B],
  // Encoded separators and dots.
  get('encoded /', '/api/admin%2Fsettings', B),
  get('encoded / lower-case hex', '/api/admin%2fsettings', B),
  get('every / encoded', '/api%2Fadmin%2Fsettings', B),
  get('encoded \\', '/api/admin%5Csettings', B),
  get('encoded \\ lower-case hex', '/api/admin%5csettings', B),
  get('encoded ..', '/api/%2e%2e/admin/settings', B),
  get('encoded .. upper-case hex', '/api/flows/%2E%2E/admin/settings', B),
  get('half-encoded ..', '/api/flows/.%2E/admin/settings', B),
  get('encoded .', '/api/flows/%2e/x', B),
  get('encoded trailing dot', '/api/admin/settings%2E', B),
  get('encoded NUL', '/api/admin%00/settings', B),
  get('encoded tab', '/api/admin/settings%09', B),
  get('encoded line feed', '/api/admin/settings%0A', B),
  get('encoded DEL', '/api/admin/settings%7F', B),
  // Double encoding.
  get('double-encoded /', '/api/admin%252Fsettings', B),
  get('double-encoded ..', '/api/%252e%252e/admin', B),
  get('double-encoded \\', '/api/admin%255Csettings', B),
  get('double-encoded %', '/api/flows/%2525', B),
  get('double-encoded letter', '/api/%2561dmin/settings', B),
  // Encoded unreserved characters: decoded by every server, judged decoded.
  get('encoded letter in a literal', '/api/%61dmin/settings', SETTINGS),
  get('encoded letter, last segment', '/api/admin/%73ettings', SETTINGS),
  get('encoded letter in a read', '/api/fl%6Fws/abc', READ),
  get('encoded base path to health', '/%61pi/health', OPEN),
  get('encoded upper-case letter reads as a case variant', '/api/%41dmin/settings', B),
  get('encoded - and _ in an id', '/api/flows/a%2Db%5Fc', READ),
  get('other escapes stay escaped', '/api/flows/a%3Ab', READ),
  // Overlong and invalid UTF-8.
  get('overlong / (2 bytes)', '/api/admin%C0%AFsettings', B),
  get('overlong .. (2 bytes)', '/api/%C0%AE%C0%AE/admin/settings', B),
  get('overlong / (3 bytes)', '/api/admin%E0%80%AFsettings', B),
  get('overlong \\', '/api/admin%C1%9Csettings', B),
  get('byte FF', '/api/flows/%FF', B),
  get('truncated sequence', '/api/flows/%C3', B),
  get('lone continuation byte', '/api/flows/%80', B),
  get('UTF-16 surrogate', '/api/flows/%ED%A0%80', B),
  get('beyond U+10FFFF', '/api/flows/%F4%90%80%80', B),
  get('truncated sequence before ASCII', '/api/flows/%E2%82x', B),
  get('valid UTF-8 name', '/api/flows/caf%C3%A9', READ),
  get('valid UTF-8, two characters', '/api/flows/%C3%A9%C3%A9', READ),
  get('raw byte outside ASCII', '/api/flows/caf\u00e9', B),
  get('raw UTF-8 bytes as HAProxy hands them over', '/api/flows/caf\u00c3\u00a9', B),
  // Backslashes.
  get('backslashes as separators', '/api\\admin\\settings', B),
  get('one backslash', '/api/admin\\settings', B),
  get('backslash traversal', '/api/flows/..\\admin\\settings', B),
  get('a path of backslashes', '\\api\\admin\\settings', B),
  // Empty segments: merged, judged merged, forwarded merged.
  get('leading //', '//api/admin/settings', SETTINGS),
  get('// after the base path', '/api//admin/settings', SETTINGS),
  get('// before the last segment', '/api/admin//settings', SETTINGS),
  get('many //', '/api///flows//abc', READ),
  get('// to health', '//api//health', OPEN),
  // Dot segments: removed, judged removed, forwarded removed.
  get('/./', '/api/./admin/settings', SETTINGS),
  get('/../ into the admin route', '/api/flows/../admin/settings', SETTINGS),
  get('trailing /.', '/api/admin/settings/.', SETTINGS),
  get('trailing /..', '/api/admin/settings/..', READ),
  get('.. out of the API', '/api/../admin/settings', OPEN),
  get('.. above the root', '/..', B),
  get('.. above the root, deeper', '/api/../../admin', B),
  // Trailing dots and slashes.
  get('trailing slash', '/api/admin/settings/', SETTINGS),
  get('trailing dot', '/api/admin/settings.', B),
  get('two trailing dots', '/api/admin/settings..', B),
  get('trailing dot inside', '/api/admin./settings', B),
  get('trailing dot on the base path', '/api./admin/settings', B),
  get('trailing encoded space', '/api/admin/settings%20', B),
  get('NTFS stream', '/api/admin/settings::$DATA', B),
  get('trailing dot on health (anonymous)', '/api/health.', B),
  get('trailing slash on health', '/api/health/', OPEN),
  get('trailing dot on an id', '/api/flows/abc.', READ),
  // Fragments.
  get('fragment', '/api/admin/settings#x', B),
  get('fragment with traversal', '/api/flows/abc#/../../admin/settings', B),
  get('encoded #', '/api/admin/settings%23', B),
  get('encoded # inside', '/api/admin%23/settings', B),
  // Encoded ? and #.
  get('encoded ?', '/api/admin/settings%3F', B),
  get('encoded ? with a query', '/api/admin/settings%3Fx=1', B),
  get('encoded ? then traversal', '/api/health%3F/../admin/settings', B),
  get('a ? in the path arg (url sent as path)', '/api/admin/settings?x=1', B),
  // Unicode lookalikes.
  get('fullwidth letters', '/api/%EF%BD%81%EF%BD%84%EF%BD%8D%EF%BD%89%EF%BD%8E/settings', B),
  get('long s (U+017F)', '/api/admin/%C5%BFettings', B),
  get('dotted capital I (U+0130)', '/api/adm%C4%B0n/settings', B),
  get('dotless i (U+0131)', '/api/adm%C4%B1n/settings', B),
  get('Kelvin sign (U+212A)', '/api/wor%E2%84%AA_pools/x', B),
  get('accented i', '/api/adm%C3%ADn/settings', B),
  get('fullwidth solidus', '/api/admin%EF%BC%8Fsettings', B),
  get('fullwidth dots', '/api/%EF%BC%8E%EF%BC%8E/admin/settings', B),
  get('zero-width space', '/api/admin/settings%E2%80%8B', B),
  get('soft hyphen', '/api/adm%C2%ADin/settings', B),
  get('no-break space', '/api/admin/settings%C2%A0', B),
  get('ligature fi (U+FB01) reads as "filter"', '/api/flows/%EF%AC%81lter', B),
  get('Cyrillic a: no server reads it as Latin', '/api/%D0%B0dmin/settings', READ),
  // Repeated and encoded query keys (include_secrets: the preset's query condition).
  get('secrets requested', BD, SETTINGS, 'include_secrets=true'),
  get('secrets not requested', BD, READ, 'include_secrets=false'),
  get('false then true', BD, B, 'include_secrets=false&include_secrets=true'),
  get('true then false', BD, B, 'include_secrets=true&include_secrets=false'),
  get('the same value twice', BD, SETTINGS, 'include_secrets=true&include_secrets=true'),
  get('encoded name (every server decodes it)', BD, SETTINGS, 'include%5Fsecrets=true'),
  get('double-encoded name', BD, B, 'include%255Fsecrets=true'),
  get('name capitalised', BD, B, 'Include_Secrets=true'),
  get('name upper case', BD, B, 'INCLUDE_SECRETS=true'),
  get('PHP array name', BD, B, 'include_secrets[]=true'),
  get('PHP array name, encoded', BD, B, 'include_secrets%5B%5D=true'),
  get('after a ;', BD, B, 'x=1;include_secrets=true'),
  get('false, then true after a ;', BD, B, 'include_secrets=false;include_secrets=true'),
  get('value 1', BD, SETTINGS, 'include_secrets=1'),
  get('fragment after the query', BD, B, 'include_secrets=true#x'),
  get('no value', BD, SETTINGS, 'include_secrets'),
  get('leading encoded space', BD, B, '%20include_secrets=true'),
  get('encoded NUL in the name', BD, B, 'include_secrets%00=true'),
  get('fullwidth name', BD, B, '%EF%BD%89nclude_secrets=true'),
  get('other parameters repeated', BD, READ, 'limit=1&limit=2'),
  get('a ; in another parameter', BD, READ, 'sort=a;b'),
];

let engine: AuthzEngine;
let tokens: { viewer: string; admin: string };

beforeAll(async () => {
  const key = await makeKey('ES256', 'k');
  engine = testEngine(key, () => NOW_MS, { cache: { maxEntries: 0, negativeTtlSeconds: 0 } });
  await engine.start();
  tokens = {
    viewer: await sign(key, {
      iss: 'https://idp.example.com',
      aud: 'prefect',
      claims: { roles: ['viewer'] },
    }),
    admin: await sign(key, { iss: 'https://idp.example.com', aud: 'prefect', claims: { roles: ['admin'] } }),
  };
  return () => engine.close();
});

describe('path confusion', () => {
  it('has at least 100 cases', () => {
    expect(PATH_CONFUSION_TABLE.length).toBeGreaterThanOrEqual(100);
  });

  it.each(PATH_CONFUSION_TABLE)('%s: %s %s ?%s', async (_what, method, path, query, expected) => {
    const decide = async (token: string | null) =>
      (await engine.decide(request(method, path, { token, query }))).reason;
    expect([await decide(tokens.viewer), await decide(tokens.admin), await decide(null)]).toEqual(expected);
  });

  it('property: any other spelling of a route literal is refused for everyone', async () => {
    const routes = ['/api/admin/settings', '/api/health', '/api/flows/filter', '/api/admin/version'];
    const respell = fc.constantFrom<(s: string) => string>(
      (s) => s.toUpperCase(),
      (s) => s.charAt(0).toUpperCase() + s.slice(1),
      (s) => `${s}.`,
      (s) => `${s}%20`,
      (s) => `${s}%C2%AD`,
      (s) => s.replace(/[a-z]/, (c) => encodeURIComponent(String.fromCharCode(c.charCodeAt(0) + 0xfee0))),
    );
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...routes), fc.nat(), respell, async (route, at, change) => {
        const segs = route.split('/').slice(1);
        const i = at % segs.length;
        segs[i] = change(segs[i] as string);
        const path = `/${segs.join('/')}`;
        for (const token of [tokens.viewer, tokens.admin, null]) {
          expect((await engine.decide(request('GET', path, { token }))).reason, path).toBe('bad_request');
        }
      }),
      { numRuns: 200 },
    );
  });

  it('explain says why an ambiguous request is refused', async () => {
    const { trace } = await engine.explain(request('GET', '/API/ADMIN/SETTINGS'));
    expect(trace).toContain('path: refused: segment "API" may be read as "api"');
    const q = await engine.explain(
      request('GET', BD, { query: 'include_secrets=false&include_secrets=true' }),
    );
    expect(q.trace).toContain('path: refused: parameter "include_secrets" given twice with different values');
  });
});
