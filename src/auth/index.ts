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
} from './dev/dev-issuer.js';
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
export {
  ALGORITHMS,
  type IssuerConfig,
  type IssuerConfigInput,
  IssuerSchema,
  KeysSchema,
  RoleMappingSchema,
} from './issuer-config.js';
export type { FetchLike } from './keys/http-fetch.js';
export type { KeySourceStatus } from './keys/key-source.js';
export { isLoopbackHost } from './keys/url-check.js';
export type { AuthLogger } from './logger.js';
export { CompiledPolicy } from './policy/compiled-policy.js';
export { normalizePath, PathRejection } from './policy/path.js';
export {
  type PolicyConfig,
  type PolicyConfigInput,
  PolicySchema,
  PrefectPresetSchema,
  type RuleConfigInput,
  RuleSchema,
} from './policy/policy-config.js';
export { ANONYMOUS_ROLE, BUILTIN_ROLES } from './policy/role-model.js';
export { type DecisionStatus, isReason, REASONS, type Reason, STATUS_BY_REASON } from './reasons.js';
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
