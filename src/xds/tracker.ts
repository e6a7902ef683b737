// ACK/NACK bookkeeping for one type on one stream: what was sent, what Envoy
// applied, what it rejected and why. status() reports these fields as they are.
export class TypeTracker {
  /** Nonce of the response awaiting an ACK or NACK; null when none is in flight. */
  pendingNonce: string | null = null;
  /** Nonce of the last response sent for this type; requests answering any other nonce are stale. */
  latestNonce: string | null = null;
  sentVersion: string | null = null;
  ackedVersion: string | null = null;
  ackedAt: string | null = null;
  nackedVersion: string | null = null;
  lastError: string | null = null;
  nackedAt: string | null = null;

  sent(nonce: string, version: string): void {
    this.pendingNonce = nonce;
    this.latestNonce = nonce;
    this.sentVersion = version;
  }

  /** A fresh subscription: earlier nonces no longer count. */
  restart(): void {
    this.pendingNonce = null;
    this.latestNonce = null;
  }

  /** The version Envoy says it holds when it (re)subscribes, e.g. after a reconnect. */
  reported(version: string, at: Date): void {
    if (version === '') return;
    this.ackedVersion = version;
    this.ackedAt = at.toISOString();
  }

  /** Envoy applied the in-flight response; returns its version. */
  acked(at: Date): string {
    this.pendingNonce = null;
    this.ackedVersion = this.sentVersion;
    this.ackedAt = at.toISOString();
    return this.sentVersion ?? '';
  }

  /** Envoy rejected the in-flight response and kept its last good config. */
  nacked(error: string, at: Date): string {
    this.pendingNonce = null;
    this.nackedVersion = this.sentVersion;
    this.lastError = error;
    this.nackedAt = at.toISOString();
    return this.sentVersion ?? '';
  }
}
