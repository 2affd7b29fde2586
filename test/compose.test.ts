/**
 * No container engine runs here, so docker-compose.yml is checked as a file:
 * against the Compose Specification's JSON schema, and against the platform's
 * own commands, settings and metrics, so that the file, the deployment
 * configuration under deploy/ and .env.example cannot drift from the code.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { Ajv } from 'ajv';
import { parse } from 'yaml';
import { describe, expect, it } from 'vitest';
import { CONFIG_VARIABLES, loadConfig } from '../cli/config.ts';

const root = new URL('..', import.meta.url);
const read = (path: string): string => readFileSync(new URL(path, root), 'utf8');
const composeText = read('docker-compose.yml');

const PLATFORM_IMAGE = 'vpp:latest';
const PARTS = ['broker', 'control', 'dispatch', 'ingest', 'sim'];
const METRICS_PORT = 9464;

interface ComposeService {
  image?: string;
  command?: string[];
  environment?: Record<string, string>;
  build?: string;
  restart?: string;
  healthcheck?: { test?: string[] | string; disable?: boolean };
  depends_on?: Record<string, { condition: string }>;
  volumes?: string[];
}
interface ComposeFile {
  services: Record<string, ComposeService>;
  volumes?: Record<string, unknown>;
}

/** The vpp_ metrics the platform registers: README's Metrics table, which test/metrics.test.ts proves equal to the registry. */
function registeredMetrics(): Set<string> {
  const readme = read('README.md');
  const start = readme.indexOf('\n## Metrics\n');
  const section = readme.slice(start, readme.indexOf('\n## ', start + 1));
  return new Set([...section.matchAll(/^\| `(vpp_[a-z0-9_]+)` \|/gm)].map((m) => m[1]!));
}

describe('docker-compose.yml', () => {
  const compose = parse(composeText, { merge: true }) as ComposeFile;
  const services = Object.entries(compose.services);
  const platform = services.filter(([, service]) => service.image === PLATFORM_IMAGE);

  it('is valid against the Compose Specification schema', () => {
    // The schema is draft-07 but names its meta-schema by an https address,
    // which Ajv knows only by its http one; it is dropped, Ajv's default is draft-07.
    const { $schema: _metaSchema, ...schema } = JSON.parse(read('node_modules/dclint/schemas/compose.schema.json')) as Record<string, unknown>;
    const ajv = new Ajv({ allErrors: true, strict: false });
    const validate = ajv.compile(schema);
    const valid = validate(compose);
    expect(validate.errors ?? []).toEqual([]);
    expect(valid).toBe(true);
  });

  it('runs every part as its own service with a vpp command, next to InfluxDB, Prometheus and Grafana', () => {
    expect(platform.map(([name]) => name).sort()).toEqual(PARTS);
    for (const [name, service] of platform) {
      expect(service.command, name).toEqual([name]);
      expect(service.build, name).toBe('.');
    }
    expect(Object.keys(compose.services).sort()).toEqual([...PARTS, 'grafana', 'influxdb', 'influxdb-dbrp', 'prometheus'].sort());
  });

  it('sets only settings the platform knows', () => {
    const known = new Set(CONFIG_VARIABLES.map((v) => v.name));
    for (const [name, service] of services) {
      // Other images' variables are theirs; a VPP_ one anywhere must be the platform's.
      const env = Object.keys(service.environment ?? {}).filter((v) => service.image === PLATFORM_IMAGE || v.startsWith('VPP_'));
      for (const variable of env) expect(known.has(variable), `${name}: ${variable}`).toBe(true);
    }
  });

  it('gives every part a configuration the platform accepts, once .env is filled in', () => {
    // ${VAR:?message} and ${VAR:-default} as Compose resolves them, from .env.example with its secrets filled in.
    const dotenv = Object.fromEntries([...read('.env.example').matchAll(/^([A-Z_][A-Z0-9_]*)=(.*)$/gm)].map((m) => [m[1]!, m[2] === 'change-me' ? 'x'.repeat(48) : m[2]!]));
    const resolve = (value: string): string => value.replace(/\$\{([A-Z0-9_]+)(?::[?-][^}]*)?\}/g, (_, name: string) => dotenv[name] ?? '');
    for (const [name, service] of platform) {
      const env = Object.fromEntries(Object.entries(service.environment ?? {}).map(([k, v]) => [k, resolve(String(v))]));
      const config = loadConfig(env);
      expect(config.timeSeriesStore, name).toBe('influxdb');
      expect(config.influx, name).toMatchObject({ url: 'http://influxdb:8086', org: dotenv.INFLUX_ORG, bucket: dotenv.INFLUX_BUCKET, database: 'vpp' });
      expect(config.metricsPort, name).toBe(METRICS_PORT);
    }
  });

  it('keeps time series in InfluxDB (mapped for InfluxQL) and the rest in SQLite on the data volume', () => {
    expect(compose.services.influxdb?.image).toMatch(/^influxdb:2\./);
    const init = compose.services.influxdb!.environment!;
    expect(init.DOCKER_INFLUXDB_INIT_MODE).toBe('setup');
    for (const [name, service] of platform) {
      const env = service.environment!;
      expect(env.VPP_STORE, name).toBe('influxdb');
      expect(env.VPP_INFLUX_URL, name).toBe('http://influxdb:8086');
      expect(env.VPP_INFLUX_DATABASE, name).toBe('vpp');
      // The platform writes where InfluxDB was set up.
      expect(env.VPP_INFLUX_TOKEN, name).toBe(init.DOCKER_INFLUXDB_INIT_ADMIN_TOKEN);
      expect(env.VPP_INFLUX_ORG, name).toBe(init.DOCKER_INFLUXDB_INIT_ORG);
      expect(env.VPP_INFLUX_BUCKET, name).toBe(init.DOCKER_INFLUXDB_INIT_BUCKET);
      expect(env.VPP_DATA_DIR, name).toBe('/data');
      expect(service.volumes, name).toContain('vpp-data:/data');
    }
    for (const name of ['ingest', 'control', 'dispatch']) {
      expect(compose.services[name]!.depends_on, name).toMatchObject({
        influxdb: { condition: 'service_healthy' },
        'influxdb-dbrp': { condition: 'service_completed_successfully' },
      });
    }
    // The DBRP service maps the database the platform reads onto the bucket.
    const dbrp = compose.services['influxdb-dbrp']!;
    expect(dbrp.environment!.INFLUX_DBRP_DATABASE).toBe('vpp');
    expect(dbrp.environment!.INFLUX_BUCKET).toBe(init.DOCKER_INFLUXDB_INIT_BUCKET);
    const script = read('deploy/influxdb/create-dbrp.sh');
    expect(script).toMatch(/influx v1 dbrp create --db "\$db" --rp autogen --bucket-id "\$bucket_id" --default/);
    expect(dbrp.volumes).toContain('./deploy/influxdb/create-dbrp.sh:/deploy/create-dbrp.sh:ro');
  });

  it('gives every service a health check and a restart policy', () => {
    for (const [name, service] of services) {
      expect(service.restart, name).toMatch(/^(always|unless-stopped|on-failure(:\d+)?)$/);
      if (name === 'influxdb-dbrp') continue; // one shot: done when it exits 0
      expect(service.healthcheck?.test, name).toBeDefined();
      expect(service.healthcheck?.disable, name).not.toBe(true);
    }
    // node:slim has no curl or wget: the parts check themselves with node's fetch.
    for (const [name, service] of platform) {
      const url = name === 'control' ? 'http://127.0.0.1:8080/readyz' : `http://127.0.0.1:${METRICS_PORT}/metrics`;
      expect(service.healthcheck!.test, name).toEqual(['CMD', 'node', '-e', expect.stringContaining(`fetch('${url}')`)]);
    }
  });

  it('writes no secret: every token, secret and password is a ${...} reference', () => {
    for (const [name, service] of services) {
      for (const [variable, value] of Object.entries(service.environment ?? {})) {
        if (/(TOKEN|SECRET|PASSWORD)$/.test(variable)) expect(value, `${name}: ${variable}`).toMatch(/^\$\{[A-Z0-9_]+:\?[^}]+\}$/);
      }
    }
  });

  it('uses only variables that .env.example lists', () => {
    const referenced = new Set([...composeText.matchAll(/\$\{([A-Za-z_][A-Za-z0-9_]*)/g)].map((m) => m[1]!));
    const listed = new Set([...read('.env.example').matchAll(/^([A-Z_][A-Z0-9_]*)=/gm)].map((m) => m[1]!));
    expect(referenced.size).toBeGreaterThan(0);
    expect([...referenced].filter((v) => !listed.has(v))).toEqual([]);
    expect([...listed].filter((v) => !referenced.has(v))).toEqual([]);
    // Placeholders only: no value that looks like a real secret.
    for (const [, variable, value] of read('.env.example').matchAll(/^([A-Z_][A-Z0-9_]*)=(.*)$/gm)) {
      if (/(TOKEN|SECRET|PASSWORD)$/.test(variable!)) expect(value, variable).toBe('change-me');
    }
  });

  it('builds from a Dockerfile that copies every part', () => {
    const dockerfile = read('Dockerfile');
    // Every part (a folder with an index.ts), so a new one cannot be left out of the image.
    const parts = readdirSync(new URL('.', root), { withFileTypes: true })
      .filter((entry) => entry.isDirectory() && existsSync(new URL(`${entry.name}/index.ts`, root)))
      .map((entry) => entry.name);
    expect(parts).toEqual(expect.arrayContaining(['notify', 'dispatch', 'store']));
    for (const part of ['bin', 'cli', ...parts]) {
      expect(dockerfile).toMatch(new RegExp(`^COPY ${part} \\./${part}$`, 'm'));
    }
    // The dashboard is built by npm ci (its prepare script) in the deps stage, from its sources, and only the bundle is kept.
    expect(dockerfile).toMatch(/^COPY dashboard \.\/dashboard\n(?:.*\n)*?RUN npm ci/m);
    expect(dockerfile).toMatch(/^COPY --from=deps \/app\/dashboard\/dist \.\/dashboard\/dist$/m);
  });
});

describe('deploy/prometheus/prometheus.yml', () => {
  const compose = parse(composeText, { merge: true }) as ComposeFile;

  it('scrapes every part of the platform on its metrics port', () => {
    const config = parse(read('deploy/prometheus/prometheus.yml')) as {
      global: { scrape_interval: string };
      scrape_configs: { static_configs: { targets: string[] }[] }[];
    };
    expect(config.global.scrape_interval).toBe('15s');
    const targets = config.scrape_configs.flatMap((job) => job.static_configs.flatMap((s) => s.targets));
    expect(targets.sort()).toEqual(PARTS.map((part) => `${part}:${METRICS_PORT}`));
    // The port the parts serve on: VPP_METRICS_PORT's default, not overridden in compose.
    expect(CONFIG_VARIABLES.find((v) => v.name === 'VPP_METRICS_PORT')?.fallback).toBe(String(METRICS_PORT));
    for (const part of PARTS) expect(compose.services[part]!.environment!.VPP_METRICS_PORT, part).toBeUndefined();
    expect(compose.services.prometheus!.volumes).toContain('./deploy/prometheus/prometheus.yml:/etc/prometheus/prometheus.yml:ro');
  });
});

describe('deploy/grafana', () => {
  const compose = parse(composeText, { merge: true }) as ComposeFile;

  interface Panel {
    type: string;
    title: string;
    datasource?: { type: string; uid: string };
    targets?: { expr?: string; query?: string }[];
  }
  const dashboard = JSON.parse(read('deploy/grafana/dashboards/fleet.json')) as { uid: string; schemaVersion: number; panels: Panel[] };
  const panels = dashboard.panels.filter((p) => p.type !== 'row');

  it('provisions the Prometheus and InfluxDB (InfluxQL, database vpp) data sources the dashboard uses', () => {
    const { datasources } = parse(read('deploy/grafana/provisioning/datasources/datasources.yml')) as {
      datasources: { uid: string; type: string; url: string; jsonData?: Record<string, string>; secureJsonData?: Record<string, string> }[];
    };
    const byUid = new Map(datasources.map((d) => [d.uid, d]));
    expect(byUid.get('prometheus')).toMatchObject({ type: 'prometheus', url: 'http://prometheus:9090' });
    expect(byUid.get('influxdb')).toMatchObject({ type: 'influxdb', url: 'http://influxdb:8086', jsonData: { version: 'InfluxQL', dbName: 'vpp', httpHeaderName1: 'Authorization' } });
    expect(byUid.get('influxdb')!.secureJsonData!.httpHeaderValue1).toBe('Token ${INFLUX_TOKEN}');
    for (const panel of panels) expect(byUid.has(panel.datasource!.uid), panel.title).toBe(true);
    // What the provisioning files interpolate comes from Grafana's environment.
    const provisioned = read('deploy/grafana/provisioning/datasources/datasources.yml');
    for (const [, variable] of provisioned.matchAll(/\$\{([A-Z0-9_]+)\}/g)) expect(compose.services.grafana!.environment, variable).toHaveProperty(variable!);
    const { providers } = parse(read('deploy/grafana/provisioning/dashboards/dashboards.yml')) as { providers: { options: { path: string } }[] };
    expect(compose.services.grafana!.volumes).toContain(`./deploy/grafana/dashboards:${providers[0]!.options.path}:ro`);
  });

  it('has a dashboard of panels over Prometheus and InfluxDB', () => {
    expect(dashboard.uid).toBe('vpp-fleet');
    expect(dashboard.schemaVersion).toBeGreaterThanOrEqual(36);
    expect(panels.length).toBeGreaterThan(5);
    for (const panel of panels) expect(panel.targets?.length, panel.title).toBeGreaterThan(0);
    expect(panels.filter((p) => p.datasource?.uid === 'prometheus').length).toBeGreaterThan(0);
    const influxQueries = panels.filter((p) => p.datasource?.uid === 'influxdb').flatMap((p) => p.targets!.map((t) => t.query!));
    expect(influxQueries.length).toBeGreaterThan(0);
    for (const query of influxQueries) expect(query).toMatch(/ FROM "rollups" WHERE .*\$timeFilter/);
  });

  it('queries only vpp_ metrics the platform registers', () => {
    const registered = registeredMetrics();
    expect(registered.size).toBeGreaterThan(50);
    const used = panels.flatMap((p) => (p.targets ?? []).flatMap((t) => [...(t.expr ?? '').matchAll(/\bvpp_[a-z0-9_]+/g)].map((m) => m[0])));
    expect(used.length).toBeGreaterThan(10);
    expect(used.filter((name) => !registered.has(name))).toEqual([]);
  });
});
