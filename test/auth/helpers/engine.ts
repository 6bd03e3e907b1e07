import { type AuthzConfigInput, AuthzEngine, type IssuerConfigInput } from '../../../src/auth/index.js';
import { jwks, type TestKey } from './keys.js';

/** The issuer most auth tests use: ES256 key `key`, audience `prefect`, roles passed through. */
export const TEST_ISS = 'https://idp.example.com';

/**
 * An engine trusting `key` as {@link TEST_ISS}, on the clock `now`, with the rest of `config`;
 * `roles` replaces the issuer's default (roles claim passed through).
 */
export function testEngine(
  key: TestKey,
  now: () => number,
  config: Omit<AuthzConfigInput, 'issuers'> = {},
  roles: IssuerConfigInput['roles'] = { claims: ['roles'], passthrough: true },
): AuthzEngine {
  return AuthzEngine.create(
    {
      issuers: [
        {
          id: 'idp',
          issuer: TEST_ISS,
          audiences: ['prefect'],
          algorithms: [key.alg],
          keys: { type: 'jwks', jwks: jwks(key) },
          roles,
        },
      ],
      ...config,
    },
    { now },
  );
}
