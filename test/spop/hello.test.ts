import { describe, expect, it } from 'vitest';
import { DataType, type KvEntry, negotiateHello, SpopError, Status } from '../../src/spop/index.js';

const str = (name: string, value: string): KvEntry => ({ name, type: DataType.STRING, value });
const u32 = (name: string, value: number | bigint): KvEntry => ({ name, type: DataType.UINT32, value });

function hello(
  o: { versions?: string; mfs?: number | bigint; caps?: string; extra?: KvEntry[] } = {},
): KvEntry[] {
  const kv: KvEntry[] = [];
  if (o.versions !== undefined) kv.push(str('supported-versions', o.versions));
  if (o.mfs !== undefined) kv.push(u32('max-frame-size', o.mfs));
  if (o.caps !== undefined) kv.push(str('capabilities', o.caps));
  return [...kv, ...(o.extra ?? [])];
}

function statusOf(fn: () => unknown): number {
  try {
    fn();
  } catch (err) {
    if (err instanceof SpopError) return err.status;
    throw err;
  }
  return -1;
}

describe('negotiateHello', () => {
  it('max-frame-size = min(offer, ours), at least 256', () => {
    expect(negotiateHello(hello({ versions: '2.0', mfs: 16380 }), 16380).maxFrameSize).toBe(16380);
    expect(negotiateHello(hello({ versions: '2.0', mfs: 1024 }), 16380).maxFrameSize).toBe(1024);
    expect(negotiateHello(hello({ versions: '2.0', mfs: 65532 }), 16380).maxFrameSize).toBe(16380);
    expect(negotiateHello(hello({ versions: '2.0', mfs: 256 }), 16380).maxFrameSize).toBe(256);
    expect(negotiateHello(hello({ versions: '2.0', mfs: 2n ** 64n - 1n }), 4096).maxFrameSize).toBe(4096);
    expect(statusOf(() => negotiateHello(hello({ versions: '2.0', mfs: 255 }), 16380))).toBe(
      Status.BAD_FRAME_SIZE,
    );
    expect(statusOf(() => negotiateHello(hello({ versions: '2.0', mfs: 0 }), 16380))).toBe(
      Status.BAD_FRAME_SIZE,
    );
  });

  it('accepts any integer type for max-frame-size', () => {
    const kv = [
      str('supported-versions', '2.0'),
      { name: 'max-frame-size', type: DataType.INT64, value: 2000 } as KvEntry,
    ];
    expect(negotiateHello(kv, 16380).maxFrameSize).toBe(2000);
    const neg = [
      str('supported-versions', '2.0'),
      { name: 'max-frame-size', type: DataType.INT32, value: -1 } as KvEntry,
    ];
    expect(statusOf(() => negotiateHello(neg, 16380))).toBe(Status.BAD_FRAME_SIZE);
  });

  it.each([
    ['2.0', true],
    [' 2.0 ', true],
    ['2.1', true],
    ['1.0, 2.0', true],
    ['3.0,2.0', true],
    ['1.0', false],
    ['3.0', false],
    ['', false],
    ['two', false],
  ])('supported-versions %j → accepted %s', (versions, ok) => {
    const status = statusOf(() => negotiateHello(hello({ versions, mfs: 16380 }), 16380));
    expect(status).toBe(ok ? -1 : Status.BAD_VERSION);
  });

  it('status 5 without supported-versions, 6 without max-frame-size', () => {
    expect(statusOf(() => negotiateHello(hello({ mfs: 16380, caps: '' }), 16380))).toBe(Status.NO_VERSION);
    expect(statusOf(() => negotiateHello(hello({ versions: '2.0', caps: '' }), 16380))).toBe(
      Status.NO_FRAME_SIZE,
    );
  });

  it('status 4 for an empty key or wrongly typed values', () => {
    expect(
      statusOf(() => negotiateHello(hello({ versions: '2.0', mfs: 300, extra: [str('', 'x')] }), 16380)),
    ).toBe(Status.INVALID);
    expect(
      statusOf(() => negotiateHello([u32('supported-versions', 2), u32('max-frame-size', 300)], 16380)),
    ).toBe(Status.INVALID);
    expect(
      statusOf(() =>
        negotiateHello(hello({ versions: '2.0', extra: [str('max-frame-size', '300')] }), 16380),
      ),
    ).toBe(Status.INVALID);
    expect(
      statusOf(() =>
        negotiateHello(hello({ versions: '2.0', mfs: 300, extra: [u32('capabilities', 1)] }), 16380),
      ),
    ).toBe(Status.INVALID);
  });

  it.each([
    ['pipelining,async', true],
    ['pipelining', true],
    [' async , pipelining ', true],
    ['async', false],
    ['fragmentation', false],
    ['', false],
    [undefined, false],
  ])('capabilities %j → echo pipelining %s, never async or fragmentation', (caps, pipelining) => {
    const r = negotiateHello(hello({ versions: '2.0', mfs: 16380, caps }), 16380);
    expect(r.pipelining).toBe(pipelining);
    expect(r.capabilities).toBe(pipelining ? 'pipelining' : '');
  });

  it('healthcheck only when the bool is true; unknown keys are skipped', () => {
    const base = { versions: '2.0', mfs: 16380 };
    const t = { name: 'healthcheck', type: DataType.BOOL, value: true } as KvEntry;
    const f = { name: 'healthcheck', type: DataType.BOOL, value: false } as KvEntry;
    expect(negotiateHello(hello({ ...base, extra: [t] }), 16380).healthcheck).toBe(true);
    expect(negotiateHello(hello({ ...base, extra: [f] }), 16380).healthcheck).toBe(false);
    expect(negotiateHello(hello({ ...base, extra: [str('future-key', 'x')] }), 16380).healthcheck).toBe(
      false,
    );
  });
});
