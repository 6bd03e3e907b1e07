/** The CLI's option table, shared by src/cli.ts (parsing) and the commands (their values). */
import { parseArgs } from 'node:util';

const options = {
  config: { type: 'string', short: 'c' },
  help: { type: 'boolean', short: 'h' },
  listen: { type: 'string' },
  'metrics-listen': { type: 'string' },
  'log-level': { type: 'string' },
  workers: { type: 'string' },
  'spoe-conf': { type: 'string' },
  method: { type: 'string' },
  path: { type: 'string' },
  query: { type: 'string' },
  host: { type: 'string' },
  src: { type: 'string' },
  'prefect-ui': { type: 'boolean' },
  token: { type: 'string' },
  authorization: { type: 'string' },
  cookie: { type: 'string' },
  'token-header': { type: 'string' },
  json: { type: 'boolean' },
  verbose: { type: 'boolean', short: 'v' },
  sub: { type: 'string' },
  roles: { type: 'string' },
  scope: { type: 'string' },
  ttl: { type: 'string' },
  aud: { type: 'string' },
  claim: { type: 'string', multiple: true },
  target: { type: 'string' },
  'allow-remote': { type: 'boolean' },
  'spawn-agent': { type: 'boolean' },
  'agent-node-options': { type: 'string' },
  'agent-pid': { type: 'string' },
  connections: { type: 'string' },
  pipeline: { type: 'string' },
  rate: { type: 'string' },
  pacing: { type: 'string' },
  'generator-gc': { type: 'string' },
  'batch-us': { type: 'string' },
  duration: { type: 'string' },
  requests: { type: 'string' },
  warmup: { type: 'string' },
  timeout: { type: 'string' },
  tokens: { type: 'string' },
  'invalid-share': { type: 'string' },
  alg: { type: 'string' },
  'token-file': { type: 'string' },
  ids: { type: 'string' },
  quiet: { type: 'boolean', short: 'q' },
} as const;

export function parseCli(argv: string[]) {
  return parseArgs({ args: argv, options, allowPositionals: true, strict: true });
}

/** What every command receives: parseArgs values for the whole option table. */
export type CliValues = ReturnType<typeof parseCli>['values'];
