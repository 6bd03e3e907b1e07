/** `iss` of an identity from an API key / an auth string (txn.<prefix>.iss, the audit line). */
export const API_KEY_ISS = 'api-key';
export const AUTH_STRING_ISS = 'auth-string';
/** Issuer `iss` values that would be confused with the keys file's credentials. */
export const RESERVED_ISS: readonly string[] = [API_KEY_ISS, AUTH_STRING_ISS];
