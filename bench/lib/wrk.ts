/**
 * wrk with one Lua script for every row: each request carries `Authorization: Bearer <token>`,
 * cycling through a token file (one line = the same token every time), so wrk does the same
 * work in every row. `done()` prints the totals and percentiles as one JSON line.
 */
import { spawn } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';

const SCRIPT = `-- bench/lib/wrk.ts: one token per request from WRK_TOKEN_FILE (cycled), JSON summary.
local tokens = {}
for line in io.lines(os.getenv("WRK_TOKEN_FILE")) do
  if #line > 0 then tokens[#tokens + 1] = line end
end
local n = #tokens
local path = os.getenv("WRK_PATH") or "/"
local i = 0
local threads = 0

function setup(thread)
  thread:set("id", threads)
  threads = threads + 1
end

function init(args)
  -- Threads start at different places in the file.
  i = ((wrk.thread:get("id") or 0) * 7919) % n
end

function request()
  i = i + 1
  if i > n then i = 1 end
  return wrk.format("GET", path, { ["Authorization"] = "Bearer " .. tokens[i] })
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRK_JSON {"requests":%d,"duration_us":%d,"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d,' ..
    '"p50":%d,"p75":%d,"p90":%d,"p99":%d,"p999":%d,"max":%d,"mean":%.1f}\\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(75), latency:percentile(90), latency:percentile(99),
    latency:percentile(99.9), latency.max, latency.mean))
end
`;

export async function writeWrkScript(dir: string): Promise<string> {
  const path = join(dir, 'tokens.lua');
  await writeFile(path, SCRIPT);
  return path;
}

export interface WrkResult {
  readonly requests: number;
  readonly durationS: number;
  readonly rps: number;
  /** Microseconds. */
  readonly latency: {
    p50: number;
    p75: number;
    p90: number;
    p99: number;
    p999: number;
    max: number;
    mean: number;
  };
  /** Non-2xx/3xx responses (a row that denies is measuring the wrong thing). */
  readonly non2xx: number;
  readonly socketErrors: number;
  readonly command: string;
}

export interface WrkOptions {
  readonly bin: string;
  readonly script: string;
  readonly port: number;
  readonly path: string;
  readonly tokenFile: string;
  readonly threads: number;
  readonly connections: number;
  readonly durationS: number;
  /** Called with wrk's pid once it runs (CPU sampling). */
  readonly onStart?: (pid: number) => void;
}

export function runWrk(o: WrkOptions): Promise<WrkResult> {
  const args = [
    `-t${o.threads}`,
    `-c${o.connections}`,
    `-d${o.durationS}s`,
    '--latency',
    '-s',
    o.script,
    `http://127.0.0.1:${o.port}${o.path}`,
  ];
  const command = `WRK_TOKEN_FILE=${o.tokenFile} WRK_PATH=${o.path} wrk ${args.join(' ')}`;
  return new Promise((resolve, reject) => {
    const child = spawn(o.bin, args, {
      env: { ...process.env, WRK_TOKEN_FILE: o.tokenFile, WRK_PATH: o.path },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (c: Buffer) => {
      out += c.toString();
    });
    child.stderr.on('data', (c: Buffer) => {
      out += c.toString();
    });
    if (child.pid !== undefined) o.onStart?.(child.pid);
    const killer = setTimeout(() => child.kill('SIGKILL'), (o.durationS + 30) * 1000);
    child.once('error', reject);
    child.once('exit', (code) => {
      clearTimeout(killer);
      const m = /WRK_JSON (\{.*\})/.exec(out);
      if (code !== 0 || m === null) {
        reject(new Error(`wrk failed (exit ${code}):\n${out}`));
        return;
      }
      const j = JSON.parse(m[1]!) as Record<string, number>;
      const durationS = j.duration_us! / 1e6;
      resolve({
        requests: j.requests!,
        durationS,
        rps: j.requests! / durationS,
        latency: {
          p50: j.p50!,
          p75: j.p75!,
          p90: j.p90!,
          p99: j.p99!,
          p999: j.p999!,
          max: j.max!,
          mean: j.mean!,
        },
        non2xx: j.status!,
        socketErrors: j.connect! + j.read! + j.write! + j.timeout!,
        command,
      });
    });
  });
}
