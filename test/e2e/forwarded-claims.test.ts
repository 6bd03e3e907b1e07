// Forwarded claims end to end: the agent sends a token's claim as txn.auth.claim_<name>, the
// shipped haproxy.cfg turns it into a request header for Prefect, and nothing but the agent's
// value ever gets there. Then the same through a spoe-agent.conf whose register-var-names does
// not list the claim: HAProxy 2.5+ still sets the variable (vars_set_by_name_ifexist restricts
// only proc-scope names), which is why `check --spoe-conf` only warns about such a list.
import { afterAll, beforeAll, expect, it } from 'vitest';
import { requireHaproxy } from '../helpers/haproxy.js';
import { devToken, type SentRequest, SHIPPED_SPOE_CONF, type Stack, send, startStack } from './stack.js';

const { describeHaproxy } = requireHaproxy();

const agentConfig = {
  devIssuer: true,
  forwardClaims: [{ name: 'email', claim: 'email' }],
};

/** The shipped spoe-agent.conf with claim_email taken out of register-var-names. */
const UNLISTED_SPOE_CONF = SHIPPED_SPOE_CONF.replace(/(register-var-names[^\n]*) claim_email\b/, '$1');

describeHaproxy('forwarded claims through the shipped HAProxy config', (v) => {
  let stack: Stack;
  let unlisted: Stack;

  beforeAll(async () => {
    expect(UNLISTED_SPOE_CONF).not.toBe(SHIPPED_SPOE_CONF);
    expect(UNLISTED_SPOE_CONF).not.toMatch(/claim_email/);
    // One after the other: each HAProxy takes its addresses from process.env (stack.ts).
    stack = await startStack({ agent: { config: agentConfig } });
    unlisted = await startStack({ agent: { config: agentConfig }, spoeConf: UNLISTED_SPOE_CONF });
  }, 90_000); // two agents (tsx compiles each at start) and two HAProxies, on a busy CI machine
  afterAll(() => Promise.all([stack?.stop(), unlisted?.stop()]));

  const atPrefect = (s: Stack, r: SentRequest) => s.stub.withHeader('x-test-id', r.testId)[0];

  it("the token's email reaches Prefect as X-Forwarded-Email, never the client's", async () => {
    const token = await devToken('fay-forward', ['viewer'], { claims: { email: 'fay@example.com' } });
    const r = await send(stack.hap, 'GET', '/api/flows/abc', {
      token,
      headers: { 'X-Forwarded-Email': 'root@example.com' },
    });
    expect(r.status).toBe(200);
    expect(atPrefect(stack, r)?.headers['x-forwarded-email']).toBe('fay@example.com');

    // A token without the claim: no header at all, whatever the client sent.
    const bare = await devToken('bo-bare', ['viewer']);
    const none = await send(stack.hap, 'GET', '/api/flows/abc', {
      token: bare,
      headers: { 'X-Forwarded-Email': 'root@example.com' },
    });
    expect(none.status).toBe(200);
    expect(atPrefect(stack, none)?.headers['x-forwarded-email']).toBeUndefined();
  });

  // The agent drops such a value (claims.ts) and the shipped email_clean ACL would refuse it too.
  it('a claim with a line break never becomes a header (no header injection)', async () => {
    const token = await devToken('ivy-inject', ['viewer'], {
      claims: { email: 'ivy@example.com\r\nX-Prefect-Role: admin' },
    });
    const r = await send(stack.hap, 'GET', '/api/flows/abc', { token });
    expect(r.status).toBe(200);
    const seen = atPrefect(stack, r);
    expect(seen?.headers['x-forwarded-user']).toBe('ivy-inject');
    expect(seen?.headers['x-prefect-role']).toBe('viewer');
    expect(seen?.headers['x-forwarded-email']).toBeUndefined();
  });

  it('HAProxy 2.5+ sets a claim variable that register-var-names does not list', async () => {
    const token = await devToken('una-unlisted', ['viewer'], { claims: { email: 'una@example.com' } });
    const r = await send(unlisted.hap, 'GET', '/api/flows/abc', { token });
    expect(r.status).toBe(200);
    const setsUnlisted = v.major > 2 || (v.major === 2 && v.minor >= 5);
    expect(atPrefect(unlisted, r)?.headers['x-forwarded-email']).toBe(
      setsUnlisted ? 'una@example.com' : undefined,
    );
  });
});
