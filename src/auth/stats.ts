import type { CredentialStoreStatus } from './apikeys/credential-store.js';
import type { KeySourceStatus } from './keys/key-source.js';
import { REASONS, type Reason } from './reasons.js';

export interface IssuerStatus extends KeySourceStatus {
  readonly id: string;
  readonly iss: string;
}

/** Counters for metrics; all monotonic except the cache sizes. */
export interface AuthzStats {
  readonly decisions: Readonly<Record<Reason, number>>;
  readonly allowed: number;
  readonly denied: number;
  readonly cache: {
    readonly hits: number;
    readonly misses: number;
    readonly negativeHits: number;
    /** Requests that waited on another request's verification of the same token. */
    readonly coalesced: number;
    readonly entries: number;
    readonly negativeEntries: number;
  };
  /** Verification attempts (jose jwtVerify calls, or rejections just before them). */
  readonly verifications: number;
  /**
   * Signature checks by verifier: node:crypto on the event loop (RSA, HMAC), node:crypto on
   * libuv's pool (ECDSA, EdDSA), or jose (everything the fast path leaves to it).
   */
  readonly verifiers: { readonly fastSync: number; readonly fastPool: number; readonly jose: number };
  readonly issuers: readonly IssuerStatus[];
  /** The keys file (config `apiKeys`), or null when there is none. */
  readonly credentials: CredentialStoreStatus | null;
  readonly policyGeneration: number;
}

/** Mutable counters with a fixed shape (hot path increments). */
export class Counters {
  readonly decisions: Record<Reason, number>;
  allowed = 0;
  denied = 0;
  hits = 0;
  misses = 0;
  negativeHits = 0;
  coalesced = 0;
  verifications = 0;

  constructor() {
    const decisions = {} as Record<Reason, number>;
    for (const reason of REASONS) decisions[reason] = 0;
    this.decisions = decisions;
  }
}
