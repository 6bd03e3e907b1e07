/** `explain`: one request through the engine, with the trace of every step. */
import { canonicalPath } from '../agent/handler.js';
import type { AuthzRequest } from '../auth/index.js';
import { createEngine, loadConfig } from '../config/load.js';
import { UsageError } from '../errors.js';
import type { CliValues } from './options.js';

export async function runExplain(values: CliValues): Promise<number> {
  if (values.path === undefined) throw new UsageError('explain needs --path');
  const config = loadConfig({ path: values.config, overrides: { log: { level: 'silent' } } });
  const engine = createEngine(config);
  try {
    await engine.start();
    const authorization =
      values.authorization ?? (values.token !== undefined ? `Bearer ${values.token}` : null);
    const req: AuthzRequest = {
      method: (values.method ?? 'GET').toUpperCase(),
      path: values.path,
      query: values.query ?? null,
      host: values.host ?? null,
      authorization,
      cookie: values.cookie ?? null,
      tokenHeader: values['token-header'] ?? null,
      src: values.src ?? null,
      prefectUi: values['prefect-ui'] === true,
      id: null,
      // As HAProxy sends it for the routes whose meaning is in the body (message authorize-body).
      ...(values.body !== undefined
        ? { body: Buffer.from(values.body), bodySize: Buffer.byteLength(values.body) }
        : {}),
    };
    const explained = await engine.explain(req, { verbose: values.verbose === true });
    const decision = explained.decision;
    // What the agent would add to the allow (var `path`) for HAProxy's set-path, if anything.
    const forwardedPath = decision.allow ? canonicalPath(req.path) : null;
    const trace =
      forwardedPath === null
        ? explained.trace
        : [...explained.trace, `forwarded path: ${forwardedPath} (var path: HAProxy set-path)`];
    if (values.json) process.stdout.write(`${JSON.stringify({ decision, forwardedPath, trace }, null, 2)}\n`);
    else process.stdout.write(`${trace.join('\n')}\n`);
    return decision.allow ? 0 : 1;
  } finally {
    engine.close();
  }
}
