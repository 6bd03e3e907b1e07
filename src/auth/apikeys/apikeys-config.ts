import { z } from 'zod';

/**
 * `apiKeys`: credentials that stock Prefect clients send. API keys (`PREFECT_API_KEY`, sent as
 * `Authorization: Bearer spoe_...`) and auth strings (`PREFECT_API_AUTH_STRING`, sent as
 * `Authorization: Basic base64(user:password)`), both from one keys file (keys-file.ts).
 */
export const ApiKeysSchema = z.strictObject({
  /** The keys file `spoe-authz apikey create` writes. Read at start (an error stops the agent). */
  file: z.string().min(1),
  /**
   * The file is watched; it is also checked this often (mtime, size, inode), for file systems
   * where watching misses changes (NFS, some container mounts). Revocations apply within this.
   */
  pollSeconds: z.number().min(0.2).max(300).default(2),
  /** Auth strings verified recently are remembered (by a hash of the header) this long... */
  authStringCacheSeconds: z.number().min(0).max(3_600).default(300),
  /** ...this many of them at most. */
  authStringCacheEntries: z.number().int().min(0).max(1_000_000).default(10_000),
  /** scrypt computations in flight at once (each takes a libuv thread-pool thread). */
  maxConcurrentHashes: z.number().int().min(1).max(64).default(2),
  /** Past that, requests waiting for one; more are denied at once (credentials_busy, 503). */
  maxQueuedHashes: z.number().int().min(0).max(10_000).default(16),
});

export type ApiKeysConfig = z.output<typeof ApiKeysSchema>;
export type ApiKeysConfigInput = z.input<typeof ApiKeysSchema>;
