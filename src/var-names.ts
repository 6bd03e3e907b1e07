/**
 * HAProxy variable names of the SPOE contract, and HAProxy's limits on them, in one place: the
 * engine checks claim names against them, agent/vars.ts sets them, `check --spoe-conf` measures
 * a SPOE file with them. HAProxy limits a variable name, scope included, to 63 bytes here:
 * `txn.` + var-prefix (up to 8 chars) + `.` + field name.
 */

/** Variable names (without scope and prefix). Final: haproxy.cfg and users' ACLs use them. */
export const VAR = {
  allow: 'allow',
  status: 'status',
  reason: 'reason',
  sub: 'sub',
  iss: 'iss',
  role: 'role',
  tag: 'tag',
  rule: 'rule',
  cache: 'cache',
  /** Only on an allow whose path was not canonical: the normalised path the policy judged. */
  path: 'path',
} as const;

export const DECISION_VAR_FIELDS: readonly string[] = Object.values(VAR);

/** `claims` in a var selection: the `claim_<name>` vars of `forwardClaims`. */
export const CLAIM_VARS = 'claims';
/**
 * What the `vars` setting can name: the decision vars, and `claims` for all `claim_*` vars.
 * HAProxy pays for each SET-VAR it receives, so a deployment can answer only what its
 * haproxy.cfg reads.
 */
export const SELECTABLE_VARS = [...Object.values(VAR), CLAIM_VARS] as const;
export type SelectableVar = (typeof SELECTABLE_VARS)[number];
/** Sent whatever `vars` says: haproxy.cfg's verdict ACLs read them (and FAIL_CLOSED sends both). */
export const REQUIRED_VARS: readonly SelectableVar[] = [VAR.allow, VAR.status];

export const HAPROXY_VAR_NAME_MAX_BYTES = 63;
export const VAR_PREFIX_MAX_CHARS = 8;
export const CLAIM_VAR_PREFIX = 'claim_';

const SCOPE = 'txn.';
/** Longest `<name>` in `claim_<name>` that fits with the longest allowed prefix. */
export const MAX_CLAIM_NAME_BYTES =
  HAPROXY_VAR_NAME_MAX_BYTES - SCOPE.length - VAR_PREFIX_MAX_CHARS - 1 - CLAIM_VAR_PREFIX.length;

/** HAProxy variable names accept letters, digits, `_` and `.`; we keep claim names to [a-z0-9_]. */
export const CLAIM_NAME_PATTERN = /^[a-z0-9_]+$/;

export function decisionVarNames(claimNames: readonly string[]): string[] {
  return [...DECISION_VAR_FIELDS, ...claimNames.map((name) => `${CLAIM_VAR_PREFIX}${name}`)];
}

/**
 * Full names (`txn.<prefix>.<var>`) that do not fit in 63 bytes. The prefix defaults to the
 * worst case of 8 characters, so an empty result means any valid prefix works.
 */
export function oversizedVarNames(
  claimNames: readonly string[],
  prefix: string = 'x'.repeat(VAR_PREFIX_MAX_CHARS),
): string[] {
  const out: string[] = [];
  for (const name of decisionVarNames(claimNames)) {
    const full = `${SCOPE}${prefix}.${name}`;
    if (Buffer.byteLength(full, 'utf8') > HAPROXY_VAR_NAME_MAX_BYTES) out.push(full);
  }
  return out;
}
