/** Public surface of the authorization engine. Knows nothing of SPOP. */
export type { AuthzRequest, CacheOutcome, ClaimValue, Decision, ForwardedClaims } from './decision.js';
export {
  DEV_ALGORITHM,
  DEV_AUDIENCE,
  DEV_ISSUER,
  DEV_ISSUER_ID,
  DEV_PUBLIC_JWKS,
  devIssuerConfig,
  isDevIssuer,
  type MintDevTokenOptions,
  mintDevToken,
} from './dev-issuer.js';
export { AuthzEngine, type AuthzEngineDeps, type Explanation } from './engine.js';
export {
  type AuthzConfig,
  type AuthzConfigInput,
  AuthzConfigSchema,
  CacheSchema,
  ForwardClaimSchema,
  parseAuthzConfig,
  TokenSourcesSchema,
} from './engine-config.js';
export { AUTH_ERROR_CODES, AuthError, type AuthErrorCode, isAuthError } from './errors.js';
export type { FetchLike } from './http-fetch.js';
export {
  ALGORITHMS,
  type IssuerConfig,
  type IssuerConfigInput,
  IssuerSchema,
  KeysSchema,
  RoleMappingSchema,
} from './issuer-config.js';
export type { KeySourceStatus } from './key-source.js';
export type { AuthLogger } from './logger.js';
export { normalizePath, PathRejection } from './path.js';
export { CompiledPolicy } from './policy.js';
export {
  type PolicyConfig,
  type PolicyConfigInput,
  PolicySchema,
  PrefectPresetSchema,
  type RuleConfigInput,
  RuleSchema,
} from './policy-config.js';
export { type DecisionStatus, isReason, REASONS, type Reason, STATUS_BY_REASON } from './reasons.js';
export { ANONYMOUS_ROLE, BUILTIN_ROLES } from './role-model.js';
export type { AuthzStats, IssuerStatus } from './stats.js';
export {
  CLAIM_VAR_PREFIX,
  DECISION_VAR_FIELDS,
  decisionVarNames,
  HAPROXY_VAR_NAME_MAX_BYTES,
  MAX_CLAIM_NAME_BYTES,
  oversizedVarNames,
  VAR_PREFIX_MAX_CHARS,
} from './var-names.js';
