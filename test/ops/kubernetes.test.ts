/**
 * deploy/kubernetes/spoe-authz.yaml against the agent itself: the ports its environment makes
 * the agent listen on are the ones the pod, the Service, the probes and the NetworkPolicy name;
 * the probes' paths answer as the probes need on a real agent (alive while the identity provider
 * is down, not ready until it has keys); its config passes `spoe-authz check`; every variable it
 * sets is one the agent reads; the only writable path is the persisted-JWKS directory; the drain
 * fits in the grace period; and the container's restrictions are those of the systemd unit.
 */

import { readFileSync } from 'node:fs';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { STOP_DEADLINE_MS } from '../../src/commands/serve.js';
import { ENV_VARS } from '../../src/config/env.js';
import { parseListenAddress } from '../../src/config/listen-address.js';
import { MetricsSettingsSchema, ProductSettingsSchema } from '../../src/config/schema.js';
import { type AgentProcess, REPO_ROOT, runCli, startAgent } from '../helpers/agent-process.js';
import { httpRequest } from '../helpers/http.js';
import { freePort } from '../helpers/net.js';

// biome-ignore lint/suspicious/noExplicitAny: manifests are checked field by field below
type Obj = Record<string, any>;
const MANIFEST = join(REPO_ROOT, 'deploy/kubernetes/spoe-authz.yaml');
const docs = parseAllDocuments(readFileSync(MANIFEST, 'utf8')).map((d) => {
  if (d.errors.length > 0) throw new Error(`${MANIFEST}: ${d.errors[0]!.message}`);
  return d.toJS() as Obj;
});
const byKind = (kind: string): Obj => {
  const found = docs.filter((d) => d.kind === kind);
  if (found.length !== 1) throw new Error(`expected one ${kind} in ${MANIFEST}, found ${found.length}`);
  return found[0]!;
};
const deployment = byKind('Deployment');
const service = byKind('Service');
const pdb = byKind('PodDisruptionBudget');
const netpol = byKind('NetworkPolicy');
const configMap = byKind('ConfigMap');
const pod = deployment.spec.template.spec as Obj;
const container = pod.containers[0] as Obj;
const env: Record<string, string> = Object.fromEntries(
  (container.env as { name: string; value: string }[]).map((e) => [e.name, e.value]),
);
const containerPort = (name: string): number => {
  const p = (container.ports as Obj[]).find((x) => x.name === name);
  if (p === undefined) throw new Error(`no container port named ${name}`);
  return p.containerPort as number;
};
const tcpPort = (address: string): number => {
  const a = parseListenAddress(address);
  if (typeof a === 'string' || a.kind !== 'tcp') throw new Error(`not a TCP listen address: ${address}`);
  return a.port;
};
const unit = readFileSync(join(REPO_ROOT, 'deploy/systemd/spoe-authz.service'), 'utf8');
const unitHas = (line: string) => unit.split('\n').some((l) => l.trim() === line);
const dockerfile = readFileSync(join(REPO_ROOT, 'Dockerfile'), 'utf8');

describe('Kubernetes manifests: ports, labels and files', () => {
  it('the agent listens where the pod, the Service, the probes and the NetworkPolicy point', () => {
    const defaults = ProductSettingsSchema.parse({});
    // The agent's defaults are loopback; the pod sets the same ports on every interface.
    expect(tcpPort(env.AUTHZ_LISTEN!)).toBe(tcpPort(defaults.listen));
    expect(tcpPort(env.AUTHZ_METRICS_LISTEN!)).toBe(tcpPort(MetricsSettingsSchema.parse({}).listen!));
    for (const v of ['AUTHZ_LISTEN', 'AUTHZ_METRICS_LISTEN']) {
      const a = parseListenAddress(env[v]!);
      expect(typeof a !== 'string' && a.kind === 'tcp' && a.host, v).toBe('0.0.0.0');
      // The image sets the same (Dockerfile ENV), so a pod without the variables behaves alike.
      expect(dockerfile, v).toMatch(new RegExp(`${v}=${env[v]!.replace('.', '\\.')}`));
    }
    expect(containerPort('spop')).toBe(tcpPort(env.AUTHZ_LISTEN!));
    expect(containerPort('metrics')).toBe(tcpPort(env.AUTHZ_METRICS_LISTEN!));
    for (const probe of ['livenessProbe', 'readinessProbe', 'startupProbe'])
      expect(container[probe].httpGet.port, probe).toBe('metrics');
    expect(container.livenessProbe.httpGet.path).toBe('/healthz');
    expect(container.startupProbe.httpGet.path).toBe('/healthz');
    expect(container.readinessProbe.httpGet.path).toBe('/readyz');
    const names = (container.ports as Obj[]).map((p) => p.name);
    for (const p of service.spec.ports as Obj[]) {
      expect(names, `Service port ${p.name}`).toContain(p.targetPort);
      expect(p.port).toBe(containerPort(p.targetPort));
    }
    for (const rule of netpol.spec.ingress as Obj[])
      for (const p of rule.ports as Obj[]) expect(names, 'NetworkPolicy port').toContain(p.port);
    const annotations = deployment.spec.template.metadata.annotations as Obj;
    expect(Number(annotations['prometheus.io/port'])).toBe(containerPort('metrics'));
    expect(annotations['prometheus.io/path']).toBe('/metrics');
  });

  it('the Service is headless (one DNS record per ready pod for server-template) and every selector picks the pods', () => {
    expect(service.spec.clusterIP).toBe('None');
    expect(service.spec.publishNotReadyAddresses).toBe(false);
    const podLabels = deployment.spec.template.metadata.labels as Obj;
    const selects = (sel: Obj) => Object.entries(sel).every(([k, v]) => podLabels[k] === v);
    expect(selects(deployment.spec.selector.matchLabels)).toBe(true);
    expect(selects(service.spec.selector)).toBe(true);
    expect(selects(pdb.spec.selector.matchLabels)).toBe(true);
    expect(selects(netpol.spec.podSelector.matchLabels)).toBe(true);
    for (const d of docs) expect(d.metadata.namespace, d.kind).toBe(deployment.metadata.namespace);
  });

  it('sets only variables the agent reads', () => {
    const known = new Set([...Object.keys(ENV_VARS), 'NODE_OPTIONS']);
    expect(Object.keys(env).filter((k) => !known.has(k))).toEqual([]);
  });

  it('mounts the config read-only where AUTHZ_CONFIG points, and writes only the JWKS directory', () => {
    const mounts = container.volumeMounts as Obj[];
    const config = mounts.find((m) => m.name === 'config')!;
    expect(config.readOnly).toBe(true);
    expect(env.AUTHZ_CONFIG).toBe(`${config.mountPath}/config.yaml`);
    expect(Object.keys(configMap.data)).toEqual(['config.yaml']);
    const writable = mounts.filter((m) => m.readOnly !== true);
    expect(writable.map((m) => m.mountPath)).toEqual([env.AUTHZ_JWKS_CACHE_DIR]);
    expect(container.securityContext.readOnlyRootFilesystem).toBe(true);
  });

  it('a voluntary disruption leaves agents serving, and a rollout never drops below the replicas', () => {
    expect(pdb.spec.minAvailable).toBeGreaterThanOrEqual(1);
    expect(pdb.spec.minAvailable).toBeLessThan(deployment.spec.replicas);
    expect(deployment.spec.strategy.rollingUpdate.maxUnavailable).toBe(0);
  });

  it('the preStop pause plus the agent drain deadline fit in the grace period', () => {
    const preStop = container.lifecycle.preStop.exec.command as string[];
    expect(preStop[0]).toBe('sleep');
    const pauseS = Number(preStop[1]);
    expect(pauseS + STOP_DEADLINE_MS / 1000).toBeLessThan(pod.terminationGracePeriodSeconds);
    // Same bound as the unit's TimeoutStopSec.
    expect(unit).toMatch(new RegExp(`^TimeoutStopSec=${pod.terminationGracePeriodSeconds}s$`, 'm'));
  });

  it("the container's restrictions match the systemd unit's hardening", () => {
    const sc = container.securityContext as Obj;
    const psc = pod.securityContext as Obj;
    // [unit line, what the pod must say]: changing one side without the other fails here.
    const pairs: [string, boolean][] = [
      ['DynamicUser=yes', psc.runAsNonRoot === true && psc.runAsUser > 0],
      ['NoNewPrivileges=yes', sc.allowPrivilegeEscalation === false && sc.privileged === false],
      [
        'CapabilityBoundingSet=',
        JSON.stringify(sc.capabilities?.drop) === '["ALL"]' && !sc.capabilities?.add,
      ],
      ['ProtectSystem=strict', sc.readOnlyRootFilesystem === true],
      ['SystemCallFilter=@system-service', psc.seccompProfile?.type === 'RuntimeDefault'],
      ['StateDirectory=spoe-authz', env.AUTHZ_JWKS_CACHE_DIR === '/var/lib/spoe-authz'],
      ['PrivateDevices=yes', pod.volumes.every((v: Obj) => v.hostPath === undefined)],
    ];
    for (const [line, podSide] of pairs) {
      expect(unitHas(line), `unit has ${line}`).toBe(true);
      expect(podSide, `pod side of ${line}`).toBe(true);
    }
    expect(pod.automountServiceAccountToken).toBe(false);
    expect(pod.hostNetwork ?? false).toBe(false);
    // The image's user (USER node) is uid 1000 in the official Node images.
    expect(dockerfile).toMatch(/^USER node$/m);
    expect(psc.runAsUser).toBe(1000);
  });
});

describe('Kubernetes manifests: the real agent with the pod environment and config', () => {
  let dir: string;
  let agent: AgentProcess;
  let deadPort: number;
  // The ConfigMap's issuer, pointed at a loopback port nothing answers on: the identity
  // provider is down (no traffic leaves the machine).
  const configText = () =>
    (configMap.data['config.yaml'] as string).replace(
      /issuer: https:\/\/[^\s]+/,
      `issuer: http://127.0.0.1:${deadPort}/realms/prefect`,
    );

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'spoe-authz-k8s-'));
    deadPort = await freePort();
    const podEnv: Record<string, string> = { ...env, AUTHZ_JWKS_CACHE_DIR: dir };
    delete podEnv.AUTHZ_CONFIG; // startAgent passes --config; AUTHZ_LISTEN*: --listen flags
    agent = await startAgent({ config: configText(), env: podEnv });
  });
  afterAll(async () => {
    await agent?.dispose();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('the ConfigMap config passes spoe-authz check', async () => {
    const r = await runCli(['check', '--config', agent.configPath]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
  });

  it('liveness passes while the identity provider is down (no restart loop); readiness does not', async () => {
    const live = await httpRequest(
      `http://127.0.0.1:${agent.metricsPort}${container.livenessProbe.httpGet.path}`,
    );
    expect(live.status).toBe(200);
    const ready = await httpRequest(
      `http://127.0.0.1:${agent.metricsPort}${container.readinessProbe.httpGet.path}`,
    );
    expect(ready.status).toBe(503);
    expect(JSON.parse(ready.body)).toMatchObject({ ready: false, issuers: [{ id: 'sso', ready: false }] });
    expect(await readdir(dir)).toEqual([]); // nothing persisted before a good fetch
  });
});
