/** `token`: mint a token from the built-in DEVELOPMENT issuer, for demos and tests only. */
import { mintDevToken } from '../auth/index.js';
import { loadConfig } from '../config/load.js';
import { UsageError } from '../errors.js';
import type { CliValues } from './options.js';

export async function runToken(values: CliValues): Promise<number> {
  if (values.sub === undefined) throw new UsageError('token needs --sub');
  const config = loadConfig({ path: values.config, overrides: { log: { level: 'silent' } } });
  if (!config.dev) {
    process.stderr.write(
      `refusing: the configured agent (${config.source}) does not trust the development issuer; ` +
        'tokens for real issuers come from your identity provider\n',
    );
    return 2;
  }
  const ttl = values.ttl === undefined ? 3600 : Number(values.ttl);
  if (!Number.isInteger(ttl) || ttl < 1)
    throw new UsageError(`--ttl takes whole seconds, got "${values.ttl}"`);
  const claims: Record<string, string> = {};
  for (const c of values.claim ?? []) {
    const i = c.indexOf('=');
    if (i <= 0) throw new UsageError(`--claim takes name=value, got "${c}"`);
    claims[c.slice(0, i)] = c.slice(i + 1);
  }
  const token = await mintDevToken({
    sub: values.sub,
    roles: values.roles === undefined ? [] : values.roles.split(',').filter((r) => r !== ''),
    ttlSeconds: ttl,
    claims,
    ...(values.scope !== undefined ? { scope: values.scope } : {}),
    ...(values.aud !== undefined ? { audience: values.aud } : {}),
  });
  process.stdout.write(`${token}\n`);
  return 0;
}
