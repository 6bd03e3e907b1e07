/**
 * BENCHMARK ONLY: an SPOP agent that allows every request without looking at it. It answers
 * with the same SET-VAR actions as a real allow decision, so HAProxy does the same work with
 * the answer; the difference to the real agent is the authorization work alone (token
 * extraction, cache lookup, policy). Row 5 of bench/e2e.ts: the floor of SPOP itself.
 * bench/e2e.ts passes `--decision` with the decision the real agent makes for row 3's request
 * (same variables, same values), so that HAProxy's share is the same in rows 3 and 5.
 *
 *   node --import tsx bench/null-agent.ts --listen 127.0.0.1:12346 [--decision '{"sub":...}']
 *
 * With `--verify-pem PEM` it also checks one RS256 signature per request (the token of the
 * `authorization` arg, nothing else: no claims, no cache, no policy) and denies when it fails.
 * That is row 6 of bench/e2e.ts: SPOP plus the one cost row 4 cannot avoid, the ceiling of a
 * fresh-token row for any agent out of HAProxy's process on the same machine.
 *
 * Not part of the product: it lives in bench/, is not compiled into dist/, and the agent has
 * no flag that turns its checks off.
 */
import { createPublicKey } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { SpopServer } from '../src/spop/index.js';
import { DEFAULT_NULL_ANSWER, type NullAnswer, nullAnswerActions, nullHandler } from './lib/null-answer.js';

const { values } = parseArgs({
  options: { listen: { type: 'string' }, decision: { type: 'string' }, 'verify-pem': { type: 'string' } },
});
const listen = values.listen ?? '127.0.0.1:12346';
const unixPath = listen.startsWith('unix:') ? listen.slice(5) : null;
const i = listen.lastIndexOf(':');
const host = listen.slice(0, i);
const port = Number(listen.slice(i + 1));

const ALLOW = nullAnswerActions(
  values.decision === undefined ? DEFAULT_NULL_ANSWER : (JSON.parse(values.decision) as NullAnswer),
);

const pem = values['verify-pem'];
const key = pem === undefined ? null : createPublicKey(readFileSync(pem));

const server = new SpopServer({
  handler: nullHandler(ALLOW, key),
  maxConnections: 4_096,
});
if (unixPath === null) await server.listen(port, host);
else await server.listen(unixPath);
process.stdout.write(
  `null agent listening on ${listen} ${key === null ? '(allows everything)' : '(checks one RS256 signature per request)'}\n`,
);
const stop = () => {
  server.close({ deadlineMs: 2_000 }).then(() => process.exit(0));
};
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
