/** Decoding a compact JWS's header and payload segments as jose reads them. */
import { strictUtf8 } from './jws.js';

/** A decoded segment as jose reads it (strict UTF-8, BOM stripped, JSON), if a plain JSON object. */
export function jsonObject(bytes: Buffer): Record<string, unknown> | null {
  let value: unknown;
  try {
    value = JSON.parse(strictUtf8(bytes));
  } catch {
    return null;
  }
  return typeof value === 'object' && value !== null && !Array.isArray(value)
    ? (value as Record<string, unknown>)
    : null;
}

/** The claims set of a payload, or null when it is not a JSON object (jose: JWTInvalid). */
export function parseClaimsSet(bytes: Buffer): Record<string, unknown> | null {
  return jsonObject(bytes);
}
