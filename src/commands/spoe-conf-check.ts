/**
 * `check --spoe-conf FILE`: does a SPOE config send what the agent reads, under a var-prefix
 * whose variable names fit HAProxy's 63-byte limit, and does it serve every HAProxy line the
 * same (2.6 ... 3.4: SPOE was rewritten in 3.1)? A small line parser of the keywords we care
 * about (doc/SPOE.txt 2.6 and 3.4): `spoe-agent`, `messages`, `option var-prefix`, `timeout`,
 * `option pipelining`, the keywords 3.1+ ignores, `spoe-message`, `args`, `event`,
 * `register-var-names`.
 */
import { readFileSync } from 'node:fs';
import { ARG, AUTHORIZE_BODY_MESSAGE, AUTHORIZE_MESSAGE } from '../agent/request.js';
import {
  CLAIM_VAR_PREFIX,
  CLAIM_VARS,
  HAPROXY_VAR_NAME_MAX_BYTES,
  oversizedVarNames,
  SELECTABLE_VARS,
  type SelectableVar,
  VAR,
  VAR_PREFIX_MAX_CHARS,
} from '../var-names.js';

export interface SpoeCheck {
  readonly errors: string[];
  readonly warnings: string[];
  /** The var-prefix HAProxy puts before the agent's vars (`option var-prefix`, else the agent's name). */
  readonly prefix: string;
}

const REQUIRED_ARGS = [ARG.method, ARG.path] as const;
const TOKEN_ARGS = [ARG.authorization, ARG.cookie, ARG.tokenHeader] as const;
const RECOMMENDED_ARGS = [ARG.query, ARG.host, ARG.src, ARG.id] as const;

/** spoe-agent keywords HAProxy 3.1+ parses and ignores (doc/SPOE.txt 3.4, 2.2 "deprecated"). */
const IGNORED_BY_3_1 = [
  'maxconnrate',
  'maxerrrate',
  'max-waiting-frames',
  'option async',
  'option send-frag-payload',
] as const;

export function checkSpoeConf(
  path: string,
  claimNames: readonly string[],
  vars: readonly SelectableVar[] = SELECTABLE_VARS,
): SpoeCheck {
  return checkSpoeText(readFileSync(path, 'utf8'), claimNames, vars);
}

export function checkSpoeText(
  text: string,
  claimNames: readonly string[],
  vars: readonly SelectableVar[] = SELECTABLE_VARS,
): SpoeCheck {
  const errors: string[] = [];
  const warnings: string[] = [];
  let section: 'agent' | 'message' | 'other' = 'other';
  let agentName: string | null = null;
  let prefix: string | null = null;
  let agentMessages: string[] = [];
  let registered: string[] | null = null;
  const timeouts = new Set<string>();
  let pipelining = true;
  const ignored = new Set<string>();
  let current: string | null = null;
  const messages = new Map<string, { args: string[]; event: string | null }>();

  for (const rawLine of text.split('\n')) {
    const line = rawLine.replace(/#.*$/, '').trim();
    if (line === '' || line.startsWith('[')) continue;
    const words = line.split(/\s+/);
    const kw = words[0]!;
    if (kw === 'spoe-agent') {
      section = 'agent';
      agentName = words[1] ?? null;
    } else if (kw === 'spoe-message') {
      section = 'message';
      current = words[1] ?? '';
      messages.set(current, { args: [], event: null });
    } else if (kw === 'spoe-group') {
      section = 'other';
    } else if (section === 'agent') {
      if (kw === 'messages') agentMessages = agentMessages.concat(words.slice(1));
      if (kw === 'option' && words[1] === 'var-prefix') prefix = words[2] ?? null;
      if (kw === 'register-var-names') registered = [...(registered ?? []), ...words.slice(1)];
      if (kw === 'timeout' && words[1] !== undefined) timeouts.add(words[1]);
      if (kw === 'no' && words[1] === 'option' && words[2] === 'pipelining') pipelining = false;
      const phrase = (kw === 'no' ? words.slice(1, 3) : words.slice(0, kw === 'option' ? 2 : 1)).join(' ');
      if ((IGNORED_BY_3_1 as readonly string[]).includes(phrase)) ignored.add(phrase);
    } else if (section === 'message' && current !== null) {
      const m = messages.get(current)!;
      if (kw === 'args') {
        for (const a of words.slice(1)) {
          const eq = a.indexOf('=');
          m.args.push(eq > 0 ? a.slice(0, eq) : '');
        }
      }
      if (kw === 'event') m.event = words[1] ?? null;
    }
  }

  if (agentName === null) errors.push('no spoe-agent section');
  const msg = messages.get(AUTHORIZE_MESSAGE);
  if (msg === undefined) {
    errors.push(`no "spoe-message ${AUTHORIZE_MESSAGE}"`);
  } else {
    if (!agentMessages.includes(AUTHORIZE_MESSAGE)) {
      errors.push(`spoe-agent does not list "${AUTHORIZE_MESSAGE}" in its messages`);
    }
    for (const a of REQUIRED_ARGS)
      if (!msg.args.includes(a)) errors.push(`message authorize lacks arg ${a}=`);
    if (!TOKEN_ARGS.some((a) => msg.args.includes(a))) {
      errors.push(
        `message authorize sends no token: add ${ARG.authorization}=req.hdr(authorization) or ${ARG.cookie}=req.cook(<name>)`,
      );
    }
    for (const a of RECOMMENDED_ARGS)
      if (!msg.args.includes(a)) warnings.push(`message authorize lacks arg ${a}=`);
    if (msg.event !== 'on-frontend-http-request') {
      warnings.push(
        `message authorize is sent on ${msg.event ?? 'no event'}, expected on-frontend-http-request`,
      );
    }
  }
  if (agentName !== null) warnings.push(...lineDifferences(timeouts, pipelining, ignored));
  // The body variant (spoe-group authorize-body, sent by `http-request send-spoe-group`).
  const bodyMsg = messages.get(AUTHORIZE_BODY_MESSAGE);
  if (bodyMsg !== undefined) {
    for (const a of [...REQUIRED_ARGS, ARG.body, ARG.bodySize])
      if (!bodyMsg.args.includes(a)) errors.push(`message ${AUTHORIZE_BODY_MESSAGE} lacks arg ${a}=`);
    if (!TOKEN_ARGS.some((a) => bodyMsg.args.includes(a)))
      errors.push(`message ${AUTHORIZE_BODY_MESSAGE} sends no token`);
  }
  const effectivePrefix = prefix ?? agentName ?? '';
  if (!/^[A-Za-z0-9_.]+$/.test(effectivePrefix))
    errors.push(`var-prefix "${effectivePrefix}" is not [a-zA-Z0-9_.]`);
  if (effectivePrefix.length > VAR_PREFIX_MAX_CHARS) {
    errors.push(`var-prefix "${effectivePrefix}" is longer than ${VAR_PREFIX_MAX_CHARS} characters`);
  }
  for (const full of oversizedVarNames(claimNames, effectivePrefix)) {
    errors.push(
      `variable ${full} is longer than ${HAPROXY_VAR_NAME_MAX_BYTES} bytes: HAProxy would drop it (shorten var-prefix)`,
    );
  }
  // A warning, not an error: HAProxy 2.5+ sets txn variables whether listed or not
  // (vars_set_by_name_ifexist restricts only proc-scope names; test/e2e/forwarded-claims.test.ts
  // shows it with HAProxy 2.6). A list that exists but misses a name is still worth fixing: it
  // no longer says what the agent sets, and HAProxy 2.4 and older drop such a name.
  if (registered !== null) {
    const needed = [
      ...[VAR.allow, VAR.status, VAR.reason].filter((v) => vars.includes(v)),
      ...(vars.includes(CLAIM_VARS) ? claimNames.map((c) => `${CLAIM_VAR_PREFIX}${c}`) : []),
    ];
    for (const n of needed) {
      if (!registered.includes(n))
        warnings.push(`register-var-names lacks ${n} (HAProxy 2.5+ sets it anyway; 2.4 and older drop it)`);
    }
  }
  return { errors, warnings, prefix: effectivePrefix };
}

/** Vars HAProxy sets itself with `option set-on-error` / `set-process-time`. */
const HAPROXY_OWN_VARS = new Set(['error', 'ptime']);

/**
 * `check --haproxy-cfg FILE`: the agent's vars (`txn.<prefix>.<name>`) that an haproxy.cfg
 * reads but the `vars` setting does not send. HAProxy finds them absent: an ACL on one never
 * matches, a header or log field built from one is empty. One warning per var, with its first line.
 */
export function checkHaproxyCfgVars(text: string, prefix: string, vars: readonly SelectableVar[]): string[] {
  const warnings: string[] = [];
  const seen = new Set<string>();
  const escaped = prefix.replace(/[.]/g, '\\.');
  const re = new RegExp(`var\\(\\s*txn\\.${escaped}\\.([A-Za-z0-9_]+)`, 'g');
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.replace(/^\s*#.*$/, '');
    for (const m of line.matchAll(re)) {
      const name = m[1]!;
      if (seen.has(name) || HAPROXY_OWN_VARS.has(name)) continue;
      seen.add(name);
      const claim = name.startsWith(CLAIM_VAR_PREFIX);
      const key = claim ? CLAIM_VARS : name;
      const where = `line ${i + 1} reads txn.${prefix}.${name}`;
      if (!(SELECTABLE_VARS as readonly string[]).includes(key))
        warnings.push(`${where}, which is not a var of the agent`);
      else if (!vars.includes(key as SelectableVar))
        warnings.push(`${where}, which the agent does not send (add ${key} to vars)`);
    }
  }
  return warnings;
}

/**
 * What would differ between HAProxy lines with this spoe-agent section (doc/SPOE.txt 2.6 and
 * 3.4; the shipped file avoids each): 2.6-3.0 use `timeout hello/idle` and warn without them,
 * 3.1+ ignores them; without `timeout processing` every line waits for the agent forever; 3.1+
 * gives each pipelining connection 20 streams but without pipelining opens one connection per
 * event in flight; a few keywords only 2.x honours.
 */
function lineDifferences(
  timeouts: ReadonlySet<string>,
  pipelining: boolean,
  ignored: ReadonlySet<string>,
): string[] {
  const out: string[] = [];
  if (!timeouts.has('processing'))
    out.push('no "timeout processing": every HAProxy line waits for a dead or slow agent forever');
  const missing = ['hello', 'idle'].filter((t) => !timeouts.has(t));
  if (missing.length > 0) {
    out.push(
      `no ${missing.map((t) => `"timeout ${t}"`).join(' or ')}: HAProxy 2.6-3.0 warn at load (3.1+ ignores both; keep them for a file shared by all lines)`,
    );
  }
  if (!pipelining)
    out.push('"no option pipelining": HAProxy 3.1+ then opens one agent connection per request in flight');
  for (const k of ignored) out.push(`"${k}" is honoured by HAProxy 2.x only (3.1+ ignores it)`);
  return out;
}
