/** One error family: every typed error the project throws has a stable code and the same base. */
import { describe, expect, it } from 'vitest';
import { AuthError, isAuthError } from '../src/auth/errors.js';
import { KeySetRejected } from '../src/auth/keys/key-set-check.js';
import { ConfigError } from '../src/config/errors.js';
import { AgentError } from '../src/errors.js';
import { HandlerTimeoutError, SpopError, SpopErrorCode, Status } from '../src/spop/index.js';

describe('error family', () => {
  it.each([
    [
      'AuthError',
      new AuthError('keys_unavailable', 'down', { cause: new Error('ECONNREFUSED') }),
      'keys_unavailable',
    ],
    ['SpopError', new SpopError(SpopErrorCode.TOO_BIG, Status.TOO_BIG), 'ERR_SPOP_TOO_BIG'],
    ['HandlerTimeoutError', new HandlerTimeoutError(50), 'ERR_HANDLER_TIMEOUT'],
    ['ConfigError', new ConfigError('file:x.yaml', [{ path: 'listen', message: 'bad' }]), 'config_invalid'],
    ['KeySetRejected', new KeySetRejected('no_usable_key', 'empty', []), 'keys_unavailable'],
  ])('%s is an AgentError with its name and stable code', (name, err, code) => {
    expect(err).toBeInstanceOf(AgentError);
    expect(err).toBeInstanceOf(Error);
    expect(err.name).toBe(name);
    expect(err.code).toBe(code);
  });

  it('AuthError keeps its cause and zod issues, and isAuthError tells codes apart', () => {
    const cause = new Error('x');
    const err = new AuthError('config_invalid', 'bad', {
      cause,
      issues: [{ path: 'issuers.0.issuer', message: 'Required' }],
    });
    expect(err.cause).toBe(cause);
    expect(err.issues).toEqual([{ path: 'issuers.0.issuer', message: 'Required' }]);
    expect(isAuthError(err, 'config_invalid')).toBe(true);
    expect(isAuthError(err, 'closed')).toBe(false);
    expect(isAuthError(new SpopError(SpopErrorCode.INVALID, Status.INVALID))).toBe(false);
  });
});
