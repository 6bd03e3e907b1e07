/**
 * `check`: validate the config (field paths on error) and optionally the SPOE file and the
 * agent vars an haproxy.cfg reads.
 */

import { readFileSync } from 'node:fs';
import { parseAuthzConfig } from '../auth/index.js';
import { describeProfile } from '../auth/issuer-profiles.js';
import { checkEngine, loadConfig } from '../config/load.js';
import type { CliValues } from './options.js';
import { checkHaproxyCfgVars, checkSpoeConf } from './spoe-conf-check.js';

export async function runCheck(values: CliValues): Promise<number> {
  const config = loadConfig({ path: values.config });
  // Building the engine compiles the policy, reads key files and secrets and checks the
  // configured key sets: what `serve` would do first, without fetching remote keys.
  const keys = (await checkEngine(config)).credentials;
  const issuers = (config.authz.issuers ?? []).map((i) => i.id);
  process.stdout.write(`config ok (${config.source}): issuers ${issuers.join(', ') || '(none)'}\n`);
  if (keys !== null) {
    process.stdout.write(
      `keys file ok (${keys.file}): ${keys.apiKeys} API keys, ${keys.authStrings} auth strings, ${keys.revoked} revoked\n`,
    );
  }
  if (config.dev) process.stdout.write('warning: the DEVELOPMENT issuer is enabled\n');
  // What each profile filled in, and the SPOE args its token source needs.
  const parsed = parseAuthzConfig(config.authz);
  for (const issuer of parsed.issuers) {
    if (issuer.profile === 'generic') continue;
    const set = describeProfile(issuer).join(', ') || 'nothing';
    process.stdout.write(`issuer ${issuer.id}: profile ${issuer.profile} set ${set}\n`);
  }
  const t = parsed.tokens;
  if (t.header !== null)
    process.stdout.write(
      `tokens: header ${t.header}: the SPOE message needs token_header=req.hdr(${t.header})\n`,
    );
  if (t.cookie !== null)
    process.stdout.write(`tokens: cookie ${t.cookie}: the SPOE message needs cookie=req.cook(${t.cookie})\n`);
  const vars = config.settings.vars;
  if (values['spoe-conf'] === undefined) return checkHaproxyCfg(values, 'auth', vars);
  const claims = (config.authz.forwardClaims ?? []).map((c) => c.name);
  const { errors, warnings, prefix } = checkSpoeConf(values['spoe-conf'], claims, vars);
  for (const w of warnings) process.stdout.write(`warning: ${values['spoe-conf']}: ${w}\n`);
  for (const e of errors) process.stderr.write(`error: ${values['spoe-conf']}: ${e}\n`);
  if (errors.length > 0) return 2;
  process.stdout.write(`spoe config ok (${values['spoe-conf']})\n`);
  return checkHaproxyCfg(values, prefix, vars);
}

/** `--haproxy-cfg FILE`: warns about each agent var it reads that `vars` does not send. */
function checkHaproxyCfg(
  values: CliValues,
  prefix: string,
  vars: Parameters<typeof checkHaproxyCfgVars>[2],
): number {
  const path = values['haproxy-cfg'];
  if (path === undefined) return 0;
  const warnings = checkHaproxyCfgVars(readFileSync(path, 'utf8'), prefix, vars);
  for (const w of warnings) process.stdout.write(`warning: ${path}: ${w}\n`);
  if (warnings.length === 0)
    process.stdout.write(`haproxy config reads only vars the agent sends (${path})\n`);
  return 0;
}
