/** `explain`: one request through the engine, with the trace of every step. */
import type { AuthzRequest } from '../auth/index.js';
import type { CliValues } from '../cli.js';
import { UsageError } from '../cli.js';
import { createEngine, loadConfig } from '../config/load.js';

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
    };
    const { decision, trace } = await engine.explain(req, { verbose: values.verbose === true });
    if (values.json) process.stdout.write(`${JSON.stringify({ decision, trace }, null, 2)}\n`);
    else process.stdout.write(`${trace.join('\n')}\n`);
    return decision.allow ? 0 : 1;
  } finally {
    engine.close();
  }
}
