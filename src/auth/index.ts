/** Public surface of the authorization engine. Knows nothing of SPOP. */

export { type ApiKeysConfig, type ApiKeysConfigInput, ApiKeysSchema } from './apikeys/apikeys-config.js';
export { API_KEY_ISS, AUTH_STRING_ISS, type CredentialStoreStatus } from './apikeys/credential-store.js';
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
  parseAuthzConfig,
} from './engine-config.js';
export { AUTH_ERROR_CODES, AuthError, type AuthErrorCode, isAuthError } from './errors.js';
export {
  ALGORITHMS,
  type IssuerConfig,
  type IssuerConfigInput,
} from './issuer-config.js';
export type { FetchLike } from './keys/http-fetch.js';
export type { KeySourceStatus } from './keys/key-source.js';
export { isLoopbackHost } from './keys/url-check.js';
export type { AuthLogger } from './logger.js';
export { CompiledPolicy } from './policy/compiled-policy.js';
export { normalizePath, PathRejection } from './policy/path.js';
export type {
  PolicyConfig,
  PolicyConfigInput,
  RuleConfigInput,
} from './policy/policy-config.js';
export { ANONYMOUS_ROLE, BUILTIN_ROLES } from './policy/role-model.js';
export { type DecisionStatus, REASONS, type Reason, STATUS_BY_REASON } from './reasons.js';
export type { AuthzStats, IssuerStatus } from './stats.js';
