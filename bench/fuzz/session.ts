/**
 * One fuzzing connection: a scenario of frames (clean, mutated, random, before HELLO, silent,
 * trickled), sent in one or several writes, and the checks on everything the agent answers.
 */
import { connect, type Socket } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Target } from '../../src/load/target.js';
import { type DecodedFrame, decodeFrame, Framer, FrameType, Status } from '../../src/spop/index.js';
import {
  disconnectBody,
  healthcheckBody,
  helloBody,
  mutate,
  notifyBody,
  randomBody,
  wire,
} from './frames.js';
import { ackKey, type Expectation, expect as expectFor } from './oracle.js';
import type { Rng } from './random.js';
import type { ValidTokens } from './tokens.js';

export interface FuzzContext {
  readonly target: Target;
  /** The agent's max-frame-size (its cap before HELLO). */
  readonly ourMax: number;
  /** How long an answer the agent owes may take (its deadlines plus slack) before it is a hang. */
  readonly hangMs: number;
  /** `frameTimeoutMs` of the agent, for the trickle scenario. */
  readonly frameTimeoutMs: number;
  readonly valid: readonly string[];
  readonly invalid: readonly string[];
  readonly validTokens: ValidTokens;
  /** The agent trusts our issuer: a valid token on an untouched NOTIFY must be allowed. */
  readonly checkFalseDeny: boolean;
  /** Capture bodies to mutate. */
  readonly captures: readonly Buffer[];
}

export interface Violation {
  readonly kind: string;
  readonly detail: string;
  readonly scenario: string;
  /** Every byte sent on the connection, hex. */
  readonly sentHex: string;
  readonly received: string;
}

export type Scenario = 'clean' | 'mutated' | 'random' | 'raw' | 'prehello' | 'silent' | 'trickle';

export interface SessionResult {
  readonly scenario: Scenario;
  readonly frames: number;
  /** `ack`, `disconnect <status>`, `closed`, ... */
  readonly outcome: string;
  readonly violations: Violation[];
}

const MAX_HEX = 8192;

function describe(f: DecodedFrame): string {
  if ('kv' in f) {
    const kv = Object.fromEntries(f.kv.map((e) => [e.name, e.value]));
    return f.type === FrameType.AGENT_DISCONNECT
      ? `AGENT-DISCONNECT status=${String(kv['status-code'])} "${String(kv.message)}"`
      : `type ${f.type} ${JSON.stringify(kv)}`;
  }
  if ('actions' in f) {
    const vars = f.actions.map((a) => (a.op === 'set' ? `${a.name}=${String(a.value.value)}` : `-${a.name}`));
    return `ACK ${f.streamId}/${f.frameId} ${vars.join(' ')}`;
  }
  return `type ${f.type} ${f.streamId}/${f.frameId}`;
}

function varOf(f: DecodedFrame, name: string): unknown {
  if (!('actions' in f)) return undefined;
  const a = f.actions.find((x) => x.op === 'set' && x.name === name);
  return a?.op === 'set' ? a.value.value : undefined;
}

/** The agent's fail-closed answer when its handler ran out of time (allow=false, 503, no reason). */
const isFallback = (f: DecodedFrame): boolean =>
  varOf(f, 'status') === 503 && varOf(f, 'reason') === undefined;

function statusOf(f: DecodedFrame | undefined): unknown {
  return f !== undefined && 'kv' in f ? f.kv.find((e) => e.name === 'status-code')?.value : undefined;
}

/** The agent's side of one connection, as frames and events. */
class Peer {
  readonly frames: DecodedFrame[] = [];
  readonly problems: string[] = [];
  ended = false;
  closed = false;
  private readonly framer = new Framer(1 << 24);
  private wake: (() => void) | null = null;

  readonly socket: Socket;

  constructor(socket: Socket) {
    this.socket = socket;
    socket.on('data', (chunk: Buffer) => {
      try {
        this.framer.push(chunk);
        while (this.framer.next()) {
          const { frame, start, end } = this.framer;
          try {
            this.frames.push(decodeFrame(Buffer.from(frame.subarray(start, end))));
          } catch (err) {
            this.problems.push(
              `undecodable frame from the agent (${(err as Error).message}): ${frame.subarray(start, end).toString('hex')}`,
            );
          }
        }
      } catch (err) {
        this.problems.push(`bad framing from the agent: ${(err as Error).message}`);
        socket.destroy();
      }
      this.notify();
    });
    socket.on('end', () => {
      this.ended = true;
      this.notify();
    });
    socket.on('error', () => {});
    socket.on('close', () => {
      this.closed = true;
      this.notify();
    });
  }

  get disconnect(): DecodedFrame | undefined {
    return this.frames.find((f) => f.type === FrameType.AGENT_DISCONNECT);
  }

  /** Resolves when `cond()` holds (true) or after `ms` (false). */
  async until(cond: () => boolean, ms: number): Promise<boolean> {
    const deadline = performance.now() + ms;
    while (!cond()) {
      const left = deadline - performance.now();
      if (left <= 0) return false;
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, Math.min(left, 250));
        this.wake = () => {
          clearTimeout(t);
          resolve();
        };
      });
      this.wake = null;
    }
    return true;
  }

  private notify(): void {
    this.wake?.();
  }
}

function open(target: Target): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = target.kind === 'unix' ? connect(target.path) : connect(target.port, target.host);
    s.setNoDelay(true);
    s.once('error', reject);
    s.once('connect', () => {
      s.off('error', reject);
      resolve(s);
    });
  });
}

/**
 * Sends the frames in one write, one write per frame, or cut at random points over several
 * ticks; resolves with how long the writes took (ms).
 */
async function deliver(rng: Rng, s: Socket, frames: readonly Buffer[]): Promise<number> {
  const t0 = performance.now();
  const mode = rng.int(3);
  if (mode === 0) s.write(Buffer.concat(frames));
  else if (mode === 1) for (const f of frames) s.write(f);
  else {
    const all = Buffer.concat(frames);
    let at = 0;
    while (at < all.length && !s.destroyed) {
      const n = 1 + rng.int(Math.max(1, all.length >> 2));
      s.write(all.subarray(at, at + n));
      at += n;
      await new Promise((r) => setImmediate(r));
    }
  }
  return performance.now() - t0;
}

export class Session {
  private readonly sent: Buffer[] = [];
  private readonly violations: Violation[] = [];
  private peer: Peer | null = null;
  private scenario: Scenario = 'clean';

  private readonly ctx: FuzzContext;
  private readonly rng: Rng;

  constructor(ctx: FuzzContext, rng: Rng) {
    this.ctx = ctx;
    this.rng = rng;
  }

  async run(scenario: Scenario): Promise<SessionResult> {
    this.scenario = scenario;
    let socket: Socket;
    try {
      socket = await open(this.ctx.target);
    } catch (err) {
      this.violate('connect', `cannot connect: ${(err as Error).message}`);
      return { scenario, frames: 0, outcome: 'no connection', violations: this.violations };
    }
    const peer = new Peer(socket);
    this.peer = peer;
    try {
      let outcome: string;
      if (scenario === 'silent') outcome = await this.silent(peer);
      else if (scenario === 'trickle') outcome = await this.trickle(peer);
      else outcome = await this.exchange(peer, scenario);
      for (const p of peer.problems) this.violate('agent-frame', p);
      return { scenario, frames: this.sent.length, outcome, violations: this.violations };
    } finally {
      socket.destroy();
    }
  }

  private violate(kind: string, detail: string): void {
    const sentHex = Buffer.concat(this.sent).toString('hex');
    this.violations.push({
      kind,
      detail,
      scenario: this.scenario,
      sentHex:
        sentHex.length > MAX_HEX ? `${sentHex.slice(0, MAX_HEX)}... (${sentHex.length / 2} bytes)` : sentHex,
      received: this.peer === null ? '' : this.peer.frames.map(describe).join(' | '),
    });
  }

  private token(validShare: number): { token: string | null; valid: boolean } {
    const r = this.rng;
    if (r.chance(0.05)) return { token: null, valid: false };
    if (r.chance(validShare)) return { token: r.pick(this.ctx.valid), valid: true };
    return { token: r.pick(this.ctx.invalid), valid: false };
  }

  /** A connection that says nothing: the HELLO deadline must close it with status 2. */
  private async silent(peer: Peer): Promise<string> {
    if (!(await peer.until(() => peer.closed, this.ctx.hangMs))) {
      this.violate('hang', `a silent connection still open after ${this.ctx.hangMs} ms`);
      return 'hang';
    }
    return this.checkTimeoutEnd(peer, 'silent connection');
  }

  /** A NOTIFY trickled a byte at a time: the frame deadline must cut it with status 2. */
  private async trickle(peer: Peer): Promise<string> {
    // The agent's max-frame-size: a smaller offer would refuse the NOTIFY by its length (status 3).
    const hello = wire(helloBody(this.rng, this.ctx.ourMax));
    this.sent.push(hello);
    peer.socket.write(hello);
    if (!(await peer.until(() => peer.frames.length > 0 || peer.closed, this.ctx.hangMs))) {
      this.violate('hang', 'no answer to a HELLO');
      return 'hang';
    }
    const { token } = this.token(0.5);
    const notify = wire(notifyBody(this.rng, 1, 1, token));
    this.sent.push(notify);
    const every = Math.max(20, Math.floor(this.ctx.frameTimeoutMs / 8));
    const deadline = performance.now() + this.ctx.hangMs;
    let i = 0;
    while (!peer.ended && !peer.closed && performance.now() < deadline) {
      if (i < notify.length) peer.socket.write(notify.subarray(i, i + 1));
      i++;
      await sleep(every);
    }
    if (i >= notify.length && peer.frames.some((f) => f.type === FrameType.ACK))
      this.violate('trickle', `a NOTIFY trickled over ${i * every} ms was not cut by the frame deadline`);
    if (!peer.ended && !peer.closed) {
      this.violate('hang', `a trickling connection still open after ${this.ctx.hangMs} ms`);
      return 'hang';
    }
    await peer.until(() => peer.closed, this.ctx.hangMs);
    return this.checkTimeoutEnd(peer, 'trickled frame');
  }

  private checkTimeoutEnd(peer: Peer, what: string): string {
    const d = peer.disconnect;
    if (d === undefined || !('kv' in d)) {
      this.violate('no-disconnect', `${what}: closed without AGENT-DISCONNECT`);
      return 'closed';
    }
    const status = d.kv.find((e) => e.name === 'status-code')?.value;
    if (status !== Status.TIMEOUT)
      this.violate('status', `${what}: AGENT-DISCONNECT status ${String(status)}, expected 2`);
    return `disconnect ${String(status)}`;
  }

  /** Builds the frames of a scenario; `intact`: every length prefix matches its body. */
  private build(scenario: Scenario): { frames: Buffer[]; bodies: Buffer[]; intact: boolean; probe: string } {
    const r = this.rng;
    const ctx = this.ctx;
    const bodies: Buffer[] = [];
    let intact = true;
    const notifies = (most: number) => {
      for (let n = r.int(most); n > 0; n--)
        bodies.push(notifyBody(r, 1 + 2 * r.int(1000), 1 + r.int(3), this.token(0.5).token));
    };
    const victim = (): Buffer => {
      const c = r.int(5);
      if (c === 0) return r.pick(ctx.captures);
      if (c === 1) return helloBody(r);
      if (c === 2) return healthcheckBody();
      if (c === 3) return disconnectBody();
      return notifyBody(r, 1 + r.int(1 << 20), 1, this.token(0.7).token);
    };
    if (scenario !== 'prehello') bodies.push(r.chance(0.03) ? healthcheckBody() : helloBody(r));
    if (scenario === 'clean') {
      notifies(16);
      if (r.chance(0.2)) bodies.push(disconnectBody());
    } else if (scenario === 'mutated' || scenario === 'prehello') {
      if (scenario === 'mutated') notifies(4);
      bodies.push(mutate(r, victim(), victim()));
    } else if (scenario === 'random') {
      notifies(4);
      for (let n = 1 + r.int(3); n > 0; n--) bodies.push(randomBody(r));
    }
    // The probe: an untouched NOTIFY with a stream-id no other frame uses, so its ACK (or the
    // DISCONNECT) shows that every byte before it was dealt with.
    const probeSid = 0x4000_0000 + (r.u32() & 0x3fff_ffff);
    const probeToken = this.token(0.5);
    bodies.push(notifyBody(r, probeSid, 1, probeToken.token));
    const probe = ackKey(probeSid, 1);
    if (probeToken.valid) this.validProbes.add(probe);
    const frames = bodies.map(wire);
    if (scenario === 'raw') {
      intact = false;
      frames.splice(1, 0, r.bytes(1 + r.int(r.chance(0.2) ? 4096 : 48)));
    } else if (scenario === 'mutated' && r.chance(0.15)) {
      // Mutate a whole wire frame, length prefix included: the agent may cut the stream elsewhere.
      intact = false;
      const i = 1 + r.int(frames.length - 1);
      frames[i] = mutate(r, frames[i]!, frames[0]!);
    }
    return { frames, bodies, intact, probe };
  }

  private readonly validProbes = new Set<string>();

  private async exchange(peer: Peer, scenario: Scenario): Promise<string> {
    const { frames, bodies, intact, probe } = this.build(scenario);
    this.sent.push(...frames);
    const deliverMs = await deliver(this.rng, peer.socket, frames);
    // On a loaded machine our writes can spread over a good part of the agent's deadlines:
    // then a status 2 from a deadline is the agent being right.
    const slow = deliverMs > this.ctx.frameTimeoutMs / 4;
    const exp = intact ? expectFor(bodies, this.ctx.ourMax) : null;
    const acked = () =>
      new Set(peer.frames.filter((f) => f.type === FrameType.ACK).map((f) => ackKey(f.streamId, f.frameId)));
    const done = (): boolean => {
      if (peer.closed) return true;
      if (exp === null) return peer.disconnect !== undefined ? peer.ended : acked().has(probe);
      if (exp.ending === 'open') return exp.acks.every((k) => acked().has(k));
      return peer.ended;
    };
    if (!(await peer.until(done, this.ctx.hangMs))) {
      const want =
        exp === null ? `the probe's ACK (${probe}) or an AGENT-DISCONNECT` : `${exp.ending} (${exp.why})`;
      this.violate('hang', `nothing settled within ${this.ctx.hangMs} ms; expected ${want}`);
      return 'hang';
    }
    // ACKs of a pipelined NOTIFY may trail the probe's; give them a moment.
    if (exp !== null && exp.ending === 'open') await peer.until(() => false, 20);
    this.checkAcks(peer, bodies, exp);
    if (slow && statusOf(peer.disconnect) === Status.TIMEOUT) return 'disconnect 2 (slow writes)';
    if (exp !== null) this.checkEnding(peer, exp);
    // Only frames after the first are cut differently: a health-check HELLO first still ends it.
    else this.checkLooseEnding(peer, expectFor(bodies.slice(0, 1), this.ctx.ourMax).ending === 'healthcheck');
    const d = peer.disconnect;
    if (d !== undefined && 'kv' in d)
      return `disconnect ${String(d.kv.find((e) => e.name === 'status-code')?.value)}`;
    if (exp?.ending === 'open' && scenario === 'clean' && this.rng.chance(0.3))
      await this.closeByHaproxy(peer);
    return peer.closed ? 'closed' : 'acked';
  }

  /** HAPROXY-DISCONNECT at the end of a clean exchange: AGENT-DISCONNECT 0 must come back. */
  private async closeByHaproxy(peer: Peer): Promise<void> {
    const f = wire(disconnectBody());
    this.sent.push(f);
    peer.socket.write(f);
    if (!(await peer.until(() => peer.disconnect !== undefined, this.ctx.hangMs))) {
      this.violate('hang', 'HAPROXY-DISCONNECT not answered');
      return;
    }
    const d = peer.disconnect!;
    const status = 'kv' in d ? d.kv.find((e) => e.name === 'status-code')?.value : undefined;
    if (status !== 0) this.violate('status', `HAPROXY-DISCONNECT answered with status ${String(status)}`);
  }

  /** Every ACK: well formed, owed, and never an allow without one of our valid tokens. */
  private checkAcks(peer: Peer, bodies: readonly Buffer[], exp: Expectation | null): void {
    const sentNotifies = new Map<string, DecodedFrame[]>();
    for (const b of bodies) {
      try {
        const f = decodeFrame(b);
        if (f.type !== FrameType.NOTIFY) continue;
        const k = ackKey(f.streamId, f.frameId);
        sentNotifies.set(k, [...(sentNotifies.get(k) ?? []), f]);
      } catch {
        // undecodable: it cannot be what an ACK answers
      }
    }
    const owed = new Set(exp?.acks ?? []);
    for (const f of peer.frames) {
      if (f.type !== FrameType.ACK) continue;
      const k = ackKey(f.streamId, f.frameId);
      if (f.flags !== 1) this.violate('ack', `ACK ${k} with flags ${f.flags}`);
      if (exp !== null && !owed.has(k)) this.violate('ack', `ACK ${k} for no NOTIFY that was sent`);
      const allow = varOf(f, 'allow');
      if (allow === true) {
        const candidates = sentNotifies.get(k) ?? [];
        const ok =
          candidates.some((n) => this.ctx.validTokens.inNotify(n)) ||
          (exp === null && this.ctx.validTokens.inBytes(Buffer.concat(this.sent)));
        if (!ok) this.violate('allow-without-token', `ACK ${k} allows a NOTIFY without a valid token`);
      }
      if (
        this.ctx.checkFalseDeny &&
        exp !== null &&
        this.validProbes.has(k) &&
        allow !== true &&
        !isFallback(f)
      ) {
        this.violate('false-deny', `the probe ${k} carries a valid token but was answered ${describe(f)}`);
      }
    }
  }

  private checkEnding(peer: Peer, exp: Expectation): void {
    const frames = peer.frames;
    if (exp.helloOk && frames.length > 0 && frames[0]!.type !== FrameType.AGENT_HELLO)
      this.violate('hello', `first answer to an acceptable HELLO is ${describe(frames[0]!)}`);
    const d = peer.disconnect;
    const status =
      d !== undefined && 'kv' in d ? d.kv.find((e) => e.name === 'status-code')?.value : undefined;
    switch (exp.ending) {
      case 'open':
        if (d !== undefined) this.violate('unexpected-disconnect', `${describe(d)} though ${exp.why}`);
        else if (peer.closed)
          this.violate('no-disconnect', `closed without AGENT-DISCONNECT though ${exp.why}`);
        return;
      case 'healthcheck':
        if (d !== undefined)
          this.violate('unexpected-disconnect', `${describe(d)} after a health-check HELLO`);
        return;
      case 'disconnect':
        if (d === undefined)
          this.violate('no-disconnect', `closed without AGENT-DISCONNECT after ${exp.why}`);
        else if (typeof status !== 'number') this.violate('status', `AGENT-DISCONNECT without a status-code`);
        return;
      case 'bad': {
        if (d === undefined) {
          this.violate('no-disconnect', `closed without AGENT-DISCONNECT after a bad frame (${exp.why})`);
          return;
        }
        if (typeof status !== 'number' || status === 0)
          this.violate('status', `bad frame (${exp.why}) answered with status ${String(status)}`);
        const before = new Set(
          frames
            .slice(0, frames.indexOf(d))
            .filter((f) => f.type === FrameType.ACK)
            .map((f) => ackKey(f.streamId, f.frameId)),
        );
        const missing = exp.acks.filter((k) => !before.has(k));
        if (missing.length > 0)
          this.violate('missing-ack', `no ACK for ${missing.join(', ')} before the DISCONNECT (${exp.why})`);
      }
    }
  }

  /**
   * A stream cut differently than sent: whatever happens ends in an ACK of the probe or a
   * DISCONNECT (or, after a health-check HELLO, a close).
   */
  private checkLooseEnding(peer: Peer, healthcheckFirst: boolean): void {
    const d = peer.disconnect;
    if (d === undefined) {
      if (peer.closed && !healthcheckFirst) this.violate('no-disconnect', 'closed without AGENT-DISCONNECT');
      return;
    }
    const status = 'kv' in d ? d.kv.find((e) => e.name === 'status-code')?.value : undefined;
    if (typeof status !== 'number') this.violate('status', 'AGENT-DISCONNECT without a status-code');
  }
}
