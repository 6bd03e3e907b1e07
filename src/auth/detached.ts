/**
 * A copy of `s` that shares no memory with its source. Request strings are slices of the
 * NOTIFY's payload text (spop/notify.ts decodes a payload once and slices it): whatever keeps
 * a slice (the token cache, a remembered decision) would otherwise keep the whole message.
 * Strings under 13 characters are never slices in V8, so they are returned as they are.
 */
export function detached(s: string): string {
  if (s.length < 13) return s;
  const copy = Buffer.from(s, 'latin1').toString('latin1');
  // Request strings are Latin-1 (one char per byte); anything else is kept as it is.
  return copy === s ? copy : s;
}

export function detachedOrNull(s: string | null): string | null {
  return s === null ? null : detached(s);
}
