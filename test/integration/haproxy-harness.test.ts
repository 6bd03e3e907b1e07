// The HAProxy harness itself: templates, config validation, logs, admin socket, reload, stop.
import { afterAll, beforeAll, expect, it } from 'vitest';
import { HAPROXY_GLOBALS, type HaproxyInstance, requireHaproxy, startHaproxy } from '../helpers/haproxy.js';
import { httpRequest } from '../helpers/http.js';
import { canConnect } from '../helpers/net.js';

const { describeHaproxy } = requireHaproxy();

const cfg = (body: string): string => `${HAPROXY_GLOBALS}
frontend fe
  bind 127.0.0.1:{{port:fe}}
  http-request return status 200 content-type text/plain lf-string "${body} dir={{file:note.txt}}\\n"
frontend other
  bind 127.0.0.1:{{port:other}}
  http-request return status 201 content-type text/plain string "other\\n"
`;

describeHaproxy('HAProxy harness', () => {
  let hap: HaproxyInstance;
  beforeAll(async () => {
    hap = await startHaproxy({
      cfg: cfg('v1'),
      files: { 'note.txt': 'port {{port:fe}}' },
      masterWorker: true,
    });
  });
  afterAll(() => hap?.stop());

  it('substitutes placeholders, waits for every bound port and serves', async () => {
    expect(hap.ports.fe).not.toBe(hap.ports.other);
    const r = await httpRequest(hap.url('/x'));
    expect(r.status).toBe(200);
    expect(r.body).toBe(`v1 dir=${hap.dir}/note.txt\n`);
    expect((await httpRequest(hap.url('/', 'other'))).status).toBe(201);
  });

  it('captures HAProxy logs (stdout) and waits for a line', async () => {
    const since = hap.logs().length;
    await httpRequest(hap.url('/logged-path'));
    const m = await hap.waitForLog(/fe fe\/<NOSRV> .*"GET \/logged-path HTTP\/1\.1"/, 5000, since);
    expect(m[0]).toContain('/logged-path');
    await expect(hap.waitForLog(/never printed/, 50)).rejects.toThrow(/no log line matched/);
  });

  it('talks to the admin socket', async () => {
    const rows = await hap.showStat();
    expect(rows.find((r) => r.pxname === 'fe' && r.svname === 'FRONTEND')?.status).toBe('OPEN');
    expect(await hap.command('show info')).toMatch(/^Name: HAProxy/m);
  });

  it('reloads a new config in master-worker mode, keeping the ports', async () => {
    const port = hap.ports.fe;
    await hap.reload({ cfg: cfg('v2') });
    expect(hap.ports.fe).toBe(port);
    // The old worker may finish its keep-alive connections; new connections reach the new one.
    const r = await httpRequest(hap.url('/'));
    expect(r.body).toMatch(/^v2 /);
  });

  it('rejects an invalid config with HAProxy’s own message', async () => {
    await expect(
      startHaproxy({ cfg: `${HAPROXY_GLOBALS}\nfrontend fe\n  bogus-keyword 1\n` }),
    ).rejects.toThrow(/haproxy -c rejected[\s\S]*bogus-keyword/);
  });

  it('rejects unknown placeholders', async () => {
    await expect(startHaproxy({ cfg: '{{nope}}' })).rejects.toThrow(TypeError);
  });

  it('stop() is idempotent and frees the port', async () => {
    const h = await startHaproxy({ cfg: cfg('s') });
    await Promise.all([h.stop(), h.stop()]);
    await h.stop();
    expect(h.running()).toBe(false);
    expect(await canConnect(h.ports.fe ?? 0)).toBe(false);
  });
});
