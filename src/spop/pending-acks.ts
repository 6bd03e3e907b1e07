/**
 * NOTIFYs whose handler returned a promise, in arrival order, which is also deadline order (one
 * handler timeout for every NOTIFY of a server). A singly linked list: push at the tail, settle
 * anywhere (marked done), prune done and expired records from the head. One timer per
 * connection is enough: it only ever needs to fire for the head.
 */
export class PendingAck {
  readonly streamId: number | bigint;
  readonly frameId: number | bigint;
  readonly deadline: number;
  readonly started: number;
  /** Answered (settled, timed out, or the connection went away): a later settle is ignored. */
  done: boolean;
  next: PendingAck | null;

  constructor(streamId: number | bigint, frameId: number | bigint, deadline: number, started: number) {
    this.streamId = streamId;
    this.frameId = frameId;
    this.deadline = deadline;
    this.started = started;
    this.done = false;
    this.next = null;
  }
}

export class PendingAcks {
  private head: PendingAck | null = null;
  private tail: PendingAck | null = null;

  /** Appends a record; true when it is the only one (the caller then arms its timer). */
  push(rec: PendingAck): boolean {
    if (this.tail === null) this.head = rec;
    else this.tail.next = rec;
    this.tail = rec;
    return this.head === rec;
  }

  /** Drops the done records at the head (after a settle). */
  prune(): void {
    let head = this.head;
    while (head?.done) head = head.next;
    this.head = head;
    if (head === null) this.tail = null;
  }

  /**
   * Marks every record whose deadline is at or before `now` done, oldest first, handing each to
   * `expire`; drops them with the done ones at the head. Returns the deadline of the first
   * record still waiting, or null when none is.
   */
  expire(now: number, expire: (rec: PendingAck) => void): number | null {
    let rec = this.head;
    while (rec !== null && (rec.done || rec.deadline <= now)) {
      if (!rec.done) {
        rec.done = true;
        expire(rec);
      }
      rec = rec.next;
    }
    this.head = rec;
    if (rec === null) this.tail = null;
    return rec === null ? null : rec.deadline;
  }

  /** Marks every record done and forgets them (the connection is gone). */
  clear(): void {
    for (let rec = this.head; rec !== null; rec = rec.next) rec.done = true;
    this.head = null;
    this.tail = null;
  }
}
