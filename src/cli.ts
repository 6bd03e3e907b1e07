#!/usr/bin/env node
/**
 * spoe-authz: the HAProxy SPOE authorization agent.
 *   serve (default)  run the agent
 *   check            validate the config (and with --spoe-conf, the SPOE file)
 *   explain          print a decision and its trace for a request
 *   token            mint a DEVELOPMENT token (dev issuer only)
 *   apikey           create, list, revoke API keys and auth strings (the keys file)
 *   load             load-test an agent over SPOP, as HAProxy would
 * Exit codes: 0 ok, 1 failure at run time, 2 usage or config error.
 */
import { parseCli } from './commands/options.js';
import { ConfigError, formatIssue } from './config/errors.js';
import { UsageError } from './errors.js';
import { ListenError } from './runtime.js';

export const USAGE = `usage: spoe-authz [command] [options]

commands:
  serve                  run the agent (default)
  check                  validate the config; with --spoe-conf FILE also the SPOE file
  explain                decide one request and print the trace
  token                  mint a token from the built-in DEVELOPMENT issuer
  apikey create|list|revoke
                         API keys (PREFECT_API_KEY) and auth strings (PREFECT_API_AUTH_STRING)
                         for machines, in the keys file (config apiKeys.file)
  load                   load-test an agent over SPOP (as HAProxy would) and check every decision

common options:
  -c, --config FILE      YAML or JSON config (default: $AUTHZ_CONFIG, else environment, else
                         the built-in development default)
  -h, --help             this text

serve:
  --listen ADDR          SPOP address, host:port or unix:/path (overrides config "listen")
  --metrics-listen ADDR  /metrics, /healthz, /readyz address, or "off"
  --log-level LEVEL      fatal, error, warn, info, debug, trace, silent
  --workers N            processes sharing the SPOP port (node:cluster); default 1

check:
  --spoe-conf FILE       also check that this SPOE config sends the args and var-prefix we expect
  --haproxy-cfg FILE     also warn about each agent var this haproxy.cfg reads that "vars" does not send

explain:
  --method M --path P [--query Q] [--host H] [--src IP] [--prefect-ui] [--body JSON]
  [--token JWT | --authorization "Bearer JWT"] [--cookie VALUE] [--token-header VALUE]
  [--verbose (every rule tried)] [--json]

token:
  --sub SUBJECT [--roles viewer,operator] [--scope "a b"] [--ttl SECONDS] [--aud AUDIENCE]
  [--claim name=value ...]

apikey:
  --keys-file FILE       the keys file (default: apiKeys.file of the config)
  apikey create --sub SUBJECT --roles worker[,...] [--work-pool NAME ...]
                [--expires 90d|12h|2027-06-30] [--note TEXT]
                [--type api-key|auth-string [--user NAME] [--password-stdin]]
                         prints the key (or user:password) once on stdout; stores its hash
  apikey list [--json]   every entry with its state (active, expired, revoked); never a secret
  apikey revoke ID       running agents refuse it within seconds (they watch the file)

load:
  --target ADDR          agent address, host:port or unix:/path (default 127.0.0.1:12345);
                         loopback only unless --allow-remote
  --spawn-agent          start the agent on a free port (with -c FILE: that config) and report
                         its CPU and RSS; [--agent-node-options="--cpu-prof ..."]
  --agent-pid PID        with --target: report this agent process's CPU and RSS
  --connections N        SPOP connections (default 4)
  --pipeline N           NOTIFYs in flight per connection (default 20)
  --rate R               decisions/s, open loop (latency from the intended send time);
                         default: as fast as possible
  --pacing sleep|spin    open loop: wait for send times in short sleeps (default) or spin
  --batch-us N           open loop: hold what is due until the oldest is N µs late, then send
                         it in one write, as HAProxy batches under load (default 0)
  --generator-gc single|parallel
                         the generator's V8 GC on its main thread (default: load runs itself
                         again under --single-threaded-gc) or with V8's helper threads
  --duration S           measured seconds (default 10 unless --requests); --requests N
  --warmup S             unmeasured seconds first (default 1)
  --timeout MS           an ACK later than this is a timeout (default 1500)
  --tokens MODE          reuse | pool:N | unique (signed ahead of time) (default reuse)
  --invalid-share F      share of invalid tokens, half bad signature, half expired (default 0)
  --alg ALG              default ES256 (dev issuer); others need --spawn-agent (own issuer)
  --token-file FILE      tokens to send, one per line (expected valid)
  --ids 3.1|2.6          stream/frame ids like HAProxy 3.1+ (default) or 2.6
  --json                 machine-readable result; --quiet: no progress lines
  exit status 1 when any decision, ACK or connection was wrong or missing
`;

export async function main(argv: string[]): Promise<number> {
  let parsed: ReturnType<typeof parseCli>;
  try {
    parsed = parseCli(argv);
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n\n${USAGE}`);
    return 2;
  }
  const { values, positionals } = parsed;
  if (values.help) {
    process.stdout.write(positionals[0] === undefined ? USAGE : commandUsage(positionals[0]));
    return 0;
  }
  const command = positionals[0] ?? 'serve';
  if (positionals.length > 1 && command !== 'apikey') {
    process.stderr.write(`unexpected argument: ${positionals[1]}\n\n${USAGE}`);
    return 2;
  }
  try {
    // Each command loads its own modules: the agent process (serve) holds none of the load
    // generator's, the dev issuer's or the keys-file tool's code for its whole life.
    switch (command) {
      case 'serve':
        return await (await import('./commands/serve.js')).runServe(values);
      case 'check':
        return await (await import('./commands/check.js')).runCheck(values);
      case 'explain':
        return await (await import('./commands/explain.js')).runExplain(values);
      case 'token':
        return await (await import('./commands/token.js')).runToken(values);
      case 'load':
        return await (await import('./commands/load.js')).runLoad(values, argv);
      case 'apikey':
        return await (await import('./commands/apikey.js')).runApiKey(values, positionals.slice(1));
      default:
        process.stderr.write(`unknown command: ${command}\n\n${USAGE}`);
        return 2;
    }
  } catch (err) {
    if (err instanceof ConfigError) {
      // One line per wrong field, each complete on its own (grep, journald, container logs).
      for (const issue of err.issues)
        process.stderr.write(`config error (${err.source}): ${formatIssue(issue)}\n`);
      return 2;
    }
    if (err instanceof ListenError) {
      process.stderr.write(`${err.message}\n`);
      return 1;
    }
    if (err instanceof UsageError) {
      process.stderr.write(`${err.message}\n\n${USAGE}`);
      return 2;
    }
    throw err;
  }
}

// Run when executed as the entry point (not when imported by tests).
/** `spoe-authz <command> --help`: the usage line, the common options and that command's section. */
export function commandUsage(command: string): string {
  const sections = USAGE.split(/\n(?=[a-z -]+:\n)/);
  const own = sections.find((s) => s.startsWith(`${command}:\n`));
  if (own === undefined) return USAGE;
  const common = sections.find((s) => s.startsWith('common options:\n')) ?? '';
  return `usage: spoe-authz ${command} [options]\n\n${own.trimEnd()}\n\n${common.trimEnd()}\n`;
}

const entry = process.argv[1] ?? '';
if (entry.endsWith('/cli.js') || entry.endsWith('/cli.ts')) {
  main(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
    },
    (err: unknown) => {
      process.stderr.write(`fatal: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
      process.exit(1);
    },
  );
}
