/**
 * Provisioning: registers a device under a site and gives it a fresh
 * secret. Only the secret's hash is stored; the secret is returned once.
 */
import { randomBytes } from 'node:crypto';
// credentials.ts rather than broker/index.ts: the index loads the whole broker (aedes), seconds of start-up control does not need.
import { generateSecret, hashSecret } from '../../store/credentials.ts';
import { SERVICE_ACCOUNTS, isValidDeviceId, type DeviceType } from '../../protocol/index.ts';
import type { DeviceRecord, Registry, Site } from '../../store/types.ts';
import { StoreError } from '../../store/types.ts';
import { badRequest, conflict, notFound } from '../errors.ts';
import { checkNewSiteId } from './save-site.ts';

export interface ProvisionDeviceInput {
  type: DeviceType;
  siteId: string;
  id?: string | undefined;
  /** Creates the site when it does not exist; must match it when it does. */
  site?: { region: string; name: string } | undefined;
}

export interface ProvisionedDevice {
  device: DeviceRecord;
  /** Shown to the operator once, never stored. */
  secret: string;
}

/** Prefix of platform service accounts; no device may take it, so new services never collide with a device. */
export const RESERVED_ID_PREFIX = 'vpp-';

export function checkDeviceIdAllowed(id: string): void {
  if (!isValidDeviceId(id)) throw badRequest(`id: '${id}' is not a valid device id`);
  if ((SERVICE_ACCOUNTS as readonly string[]).includes(id) || id.toLowerCase().startsWith(RESERVED_ID_PREFIX)) {
    throw badRequest(`id: '${id}' is reserved for platform services (ids starting with '${RESERVED_ID_PREFIX}')`);
  }
}

function generateDeviceId(type: DeviceType): string {
  return `${type}-${randomBytes(6).toString('hex')}`;
}

/** Returns the site, creating it from `input.site` when it does not exist yet. */
function ensureSite(registry: Registry, input: ProvisionDeviceInput): Site {
  const existing = registry.getSite(input.siteId);
  if (existing) {
    if (input.site && (input.site.region !== existing.region || input.site.name !== existing.name)) {
      throw conflict(
        `site: '${input.siteId}' exists with region '${existing.region}' and name '${existing.name}'; change it with POST /api/v1/sites`,
      );
    }
    return existing;
  }
  if (!input.site) {
    throw notFound(`siteId: site '${input.siteId}' does not exist; create it with POST /api/v1/sites or pass site: { region, name }`);
  }
  checkNewSiteId(input.siteId);
  const site: Site = { id: input.siteId, region: input.site.region, name: input.site.name };
  registry.upsertSite(site);
  return site;
}

export function provisionDevice(deps: { registry: Registry; clock: () => number }, input: ProvisionDeviceInput): ProvisionedDevice {
  const { registry } = deps;
  if (input.id !== undefined) {
    checkDeviceIdAllowed(input.id);
    // Checked before the site is created, so a taken id has no side effect.
    if (registry.getDevice(input.id)) throw conflict(`id: device '${input.id}' already exists`);
  }
  ensureSite(registry, input);
  const secret = generateSecret();
  const secretHash = hashSecret(secret);
  // A generated id collides with odds of 1 in 2^48; retry a couple of times rather than fail.
  const attempts = input.id === undefined ? 3 : 1;
  for (let attempt = 1; ; attempt++) {
    const id = input.id ?? generateDeviceId(input.type);
    try {
      const device = registry.createDevice({ id, type: input.type, siteId: input.siteId, secretHash }, deps.clock());
      return { device, secret };
    } catch (err) {
      if (err instanceof StoreError && err.code === 'conflict' && attempt < attempts) continue;
      throw err;
    }
  }
}
