import { z } from 'zod';
import { ROLE_NAME } from '../issuer-config.js';
import { DEFAULT_BODY_MAX_BYTES } from './body.js';
import { parseCidr } from './cidr.js';
import { compilePattern, PatternError } from './pattern.js';
import { ANONYMOUS_ROLE, BUILTIN_ROLES, MAX_ROLES } from './role-model.js';

const PATTERN = z.string().superRefine((value, ctx) => {
  try {
    compilePattern(value);
  } catch (err) {
    if (!(err instanceof PatternError)) throw err;
    ctx.addIssue({ code: 'custom', message: err.message });
  }
});

const METHOD = z.string().regex(/^[A-Z]{1,16}$/, 'HTTP methods are upper-case tokens');
const LABEL = z
  .string()
  .regex(/^[A-Za-z0-9][A-Za-z0-9_.:+-]{0,127}$/, '[A-Za-z0-9_.:+-], at most 128 characters');
const HOST = z
  .string()
  .regex(/^(\*\.)?[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?$/, 'a host name, or *.suffix')
  .transform((h) => h.toLowerCase());
const CIDR = z.string().refine((v) => parseCidr(v) !== null, 'not an IP address or CIDR');
const SCALAR = z.union([z.string(), z.number(), z.boolean()]);

/**
 * A query condition. A bare string means `equals`. Each test looks at every occurrence of the
 * parameter: `equals` = some occurrence equals one of the values; `present`; `truthy: true` =
 * some occurrence is not a false spelling (false/0/off/f/n/no), `truthy: false` = none is.
 */
export const QueryConditionSchema = z.union([
  z.string(),
  z
    .strictObject({
      equals: z.union([z.string(), z.array(z.string()).min(1)]).optional(),
      present: z.boolean().optional(),
      truthy: z.boolean().optional(),
    })
    .refine((c) => c.equals !== undefined || c.present !== undefined || c.truthy !== undefined, {
      message: 'one of equals, present, truthy is required',
    }),
]);

/**
 * A condition on a top-level member of a JSON body (policy/body.ts): `present`; `truthy: true` =
 * present and not a false spelling (false, 0, "false", "0", "off", "f", "n", "no"), `truthy:
 * false` = absent or one of those. A rule with body conditions matches only a whole JSON object
 * within `bodyMaxBytes`; otherwise the request is denied with body_missing / body_too_large /
 * body_invalid unless a later rule allows it.
 */
export const BodyConditionSchema = z
  .strictObject({ present: z.boolean().optional(), truthy: z.boolean().optional() })
  .refine((c) => c.present !== undefined || c.truthy !== undefined, {
    message: 'one of present, truthy is required',
  });

/** A claim condition: the claim (scalar or array) equals or contains one of the values, or a path parameter. */
export const ClaimConditionSchema = z.union([
  SCALAR,
  z.array(SCALAR).min(1),
  z.strictObject({ param: z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/) }),
]);

export const RoleRequirementSchema = z.union([
  z.array(ROLE_NAME).min(1),
  z
    .strictObject({ any: z.array(ROLE_NAME).min(1).optional(), all: z.array(ROLE_NAME).min(1).optional() })
    .refine((r) => r.any !== undefined || r.all !== undefined, { message: 'any or all is required' }),
]);

export const RuleSchema = z
  .strictObject({
    /** Reported as `rule` in the decision. Defaults to `rule-<index>`. */
    name: LABEL.optional(),
    effect: z.enum(['allow', 'deny']).default('allow'),
    /** `*` (default) or a list; GET also matches HEAD. */
    methods: z.union([z.literal('*'), z.array(METHOD).min(1)]).default('*'),
    path: PATTERN,
    /** Patterns that exclude a path otherwise matched by `path`. */
    pathNot: z.array(PATTERN).default([]),
    query: z.record(z.string().min(1), QueryConditionSchema).default({}),
    hosts: z.array(HOST).min(1).optional(),
    /** Client address must be in one of these CIDRs. */
    sources: z.array(CIDR).min(1).optional(),
    /** Matches only if `X-Prefect-UI: true` was (true) or was not (false) sent. */
    prefectUi: z.boolean().optional(),
    /** Also applies to requests without a token. Otherwise a rule needs a verified token. */
    anonymous: z.boolean().default(false),
    roles: RoleRequirementSchema.optional(),
    /** All of these must be in the token's `scope`/`scp`. */
    scopes: z.array(z.string().min(1)).min(1).optional(),
    claims: z.record(z.string().min(1), ClaimConditionSchema).optional(),
    /** A client certificate HAProxy verified is required; with `subjects`, its ssl_c_s_dn is one of them. */
    clientCert: z
      .union([z.boolean(), z.strictObject({ subjects: z.array(z.string().min(1)).min(1) })])
      .optional(),
    /** Conditions on the JSON body's top-level members (HAProxy must send the body: README). */
    body: z.record(z.string().min(1), BodyConditionSchema).optional(),
    /** Reported as `tag` in the decision. */
    tag: LABEL.optional(),
  })
  .superRefine((rule, ctx) => {
    if (rule.anonymous && (rule.roles || rule.scopes || rule.claims)) {
      ctx.addIssue({
        code: 'custom',
        path: ['anonymous'],
        message: 'an anonymous rule cannot require roles, scopes or claims',
      });
    }
    if (rule.claims) {
      const names = compilePattern(rule.path).names;
      for (const [claim, cond] of Object.entries(rule.claims)) {
        if (typeof cond === 'object' && cond !== null && 'param' in cond && !names.includes(cond.param)) {
          ctx.addIssue({
            code: 'custom',
            path: ['claims', claim, 'param'],
            message: `path pattern has no parameter "${cond.param}"`,
          });
        }
      }
    }
  });

export const PrefectPresetSchema = z.strictObject({
  /** Where Prefect mounts its REST API (PREFECT_SERVER_API_BASE_PATH). */
  basePath: z
    .string()
    .regex(/^(\/[A-Za-z0-9_~-][A-Za-z0-9._~-]*)+$/, 'an absolute path such as /api, without trailing slash')
    .default('/api'),
  /** UI shell (GET outside the API): open, token required, or not served. */
  ui: z.enum(['anonymous', 'authenticated', 'deny']).default('anonymous'),
  /** If set, worker routes on /work_pools/:pool need this claim to contain the pool name. */
  workPoolClaim: z.string().min(1).optional(),
});

export const PolicySchema = z
  .strictObject({
    preset: z.enum(['prefect', 'none']).default('prefect'),
    prefect: PrefectPresetSchema.prefault({}),
    /** Custom roles beyond the built-in ones, with the roles they imply. */
    roles: z.record(ROLE_NAME, z.strictObject({ implies: z.array(ROLE_NAME).default([]) })).default({}),
    /** Evaluated before the preset; first match wins; no match denies. */
    rules: z.array(RuleSchema).default([]),
    /** Largest body a `body` condition judges; a larger (or cut) body is denied body_too_large. */
    bodyMaxBytes: z.number().int().min(1).max(1_048_576).default(DEFAULT_BODY_MAX_BYTES),
  })
  .superRefine((policy, ctx) => {
    const known = new Set<string>([...BUILTIN_ROLES, ...Object.keys(policy.roles)]);
    if (known.has(ANONYMOUS_ROLE) || Object.hasOwn(policy.roles, ANONYMOUS_ROLE)) {
      ctx.addIssue({ code: 'custom', path: ['roles', ANONYMOUS_ROLE], message: 'anonymous is reserved' });
    }
    if (known.size > MAX_ROLES) {
      ctx.addIssue({ code: 'custom', path: ['roles'], message: `at most ${MAX_ROLES} roles in total` });
    }
    for (const [name, spec] of Object.entries(policy.roles)) {
      spec.implies.forEach((r, i) => {
        if (!known.has(r)) {
          ctx.addIssue({
            code: 'custom',
            path: ['roles', name, 'implies', i],
            message: `unknown role "${r}"`,
          });
        }
      });
    }
    const names = new Set<string>();
    policy.rules.forEach((rule, i) => {
      if (rule.name !== undefined) {
        if (names.has(rule.name)) {
          ctx.addIssue({
            code: 'custom',
            path: ['rules', i, 'name'],
            message: `duplicate rule name "${rule.name}"`,
          });
        }
        names.add(rule.name);
      }
      const req = rule.roles;
      if (!req) return;
      const lists: Array<[string[], (string | number)[]]> = Array.isArray(req)
        ? [[req, ['rules', i, 'roles']]]
        : [
            [req.any ?? [], ['rules', i, 'roles', 'any']],
            [req.all ?? [], ['rules', i, 'roles', 'all']],
          ];
      for (const [list, path] of lists) {
        list.forEach((r, j) => {
          if (!known.has(r))
            ctx.addIssue({ code: 'custom', path: [...path, j], message: `unknown role "${r}"` });
        });
      }
    });
  });

export type RuleConfig = z.output<typeof RuleSchema>;
export type RuleConfigInput = z.input<typeof RuleSchema>;
export type PolicyConfig = z.output<typeof PolicySchema>;
export type PolicyConfigInput = z.input<typeof PolicySchema>;
export type PrefectPresetConfig = z.output<typeof PrefectPresetSchema>;
