/**
 * Fleet planning: which sites and devices exist, and the physical parameters
 * of each site. Deterministic for a seed: the same seed gives the same ids,
 * regions and parameters on every run, and a site's parameters depend only
 * on the seed, its id and its region (not on how many other sites exist), so
 * `startFleet` can derive them again from the seed.
 */
import type { DeviceType } from '../protocol/index.ts';
/**
 * A simulated site as the simulator plans it. Structurally what the
 * registry stores, but the simulator's own: it speaks to the platform only
 * over MQTT and knows nothing but the protocol.
 */
export interface SimSite {
  id: string;
  region: string;
  name: string;
}
import { SimError } from './errors.ts';
import { createRandom, deriveSeed, hashString, type Random } from './random.ts';
import type { SiteParams } from './site.ts';
import { MINUTE_MS } from './sim-time.ts';

/** A device of the simulated fleet, as the registry needs it. */
export interface SimDeviceSpec {
  id: string;
  type: DeviceType;
  siteId: string;
}

export interface FleetPlanOptions {
  sites: number;
  seed: number;
  /** Regions the sites are spread over, round robin; DEFAULT_REGIONS when absent. */
  regions?: readonly string[];
}

export interface FleetPlan {
  sites: SimSite[];
  devices: SimDeviceSpec[];
  /** Physical parameters per site id. */
  siteParams: Map<string, SiteParams>;
}

export const DEFAULT_REGIONS: readonly string[] = ['north', 'south', 'east', 'west'];

/** The device types of every site, in the order their devices are listed. */
export const SITE_DEVICE_TYPES: readonly DeviceType[] = ['battery', 'solar', 'meter'];

/** `site-0001` for index 0; the number widens past 9999. */
export function formatSiteId(index: number): string {
  return `site-${String(index + 1).padStart(4, '0')}`;
}

/** `site-0001-battery`. */
export function formatDeviceId(siteId: string, type: DeviceType): string {
  return `${siteId}-${type}`;
}

interface RegionProfile {
  sunriseHour: number;
  sunsetHour: number;
  meanTempC: number;
}

/**
 * Sun and climate of the default regions: the north has shorter, cooler
 * days, the south longer, warmer ones; east sees the sun earlier than west.
 */
const REGION_PROFILES: Readonly<Record<string, RegionProfile>> = {
  north: { sunriseHour: 7.25, sunsetHour: 18.25, meanTempC: 9 },
  south: { sunriseHour: 6.25, sunsetHour: 19.5, meanTempC: 18 },
  east: { sunriseHour: 6, sunsetHour: 18.75, meanTempC: 13 },
  west: { sunriseHour: 7, sunsetHour: 19.75, meanTempC: 12 },
};

/** Profile of a region: from the table, or drawn from the region's name (geography does not depend on the fleet seed). */
function regionProfile(region: string): RegionProfile {
  const known = REGION_PROFILES[region];
  if (known) return known;
  const random = createRandom(hashString(`region:${region}`));
  const sunriseHour = random.between(6, 7.5);
  return { sunriseHour, sunsetHour: sunriseHour + random.between(11, 13.5), meanTempC: random.between(8, 18) };
}

function roundToStep(value: number, step: number): number {
  return Math.round(value / step) * step;
}

function pick<T>(random: Random, items: readonly T[]): T {
  return items[Math.floor(random.next() * items.length)]!;
}

/**
 * Physical parameters of one site, drawn in a fixed order from a generator
 * seeded by the fleet seed and the site id. Ranges: battery 5–20 kWh with a
 * 3–10 kW power limit and a 10–30 % reserve; PV 3–12 kWp; household base
 * load 150–500 W with morning and evening peaks.
 */
export function planSiteParams(seed: number, site: Pick<SimSite, 'id' | 'region'>): SiteParams {
  const random = createRandom(deriveSeed(seed, `site:${site.id}`));
  const region = regionProfile(site.region);

  const capacityWh = roundToStep(random.between(5_000, 20_000), 500);
  const powerLimitW = roundToStep(random.between(3_000, 10_000), 100);
  const reservePct = pick(random, [10, 15, 20, 25, 30]);
  const initialSocPct = random.between(reservePct + 10, 90);
  const heatingCPerW = random.between(0.0015, 0.0025);

  const peakW = roundToStep(random.between(3_000, 12_000), 100);
  const cloudiness = random.between(0.3, 0.8);
  const systemEfficiency = random.between(0.8, 0.9);
  const sunJitterHours = random.between(-0.25, 0.25);

  const baseW = random.between(150, 500);
  const morningPeakW = random.between(500, 2_000);
  const eveningPeakW = random.between(1_000, 3_500);
  const noiseW = random.between(100, 300);
  const applianceW = random.between(1_500, 3_000);
  const applianceDuty = random.between(0.05, 0.12);

  const impedanceVPerW = random.between(0.0005, 0.001);
  const dailySwingC = random.between(4, 8);

  return {
    siteId: site.id,
    region: site.region,
    battery: {
      capacityWh,
      maxChargeW: powerLimitW,
      maxDischargeW: powerLimitW,
      efficiency: 0.95,
      reservePct,
      heatingCPerW,
      thermalTimeConstantMs: 30 * MINUTE_MS,
    },
    initialSocPct,
    solar: {
      peakW,
      sunriseHour: region.sunriseHour + sunJitterHours,
      sunsetHour: region.sunsetHour + sunJitterHours,
      cloudiness,
      weatherSeed: deriveSeed(seed, `weather:${site.region}`),
      cloudSeed: deriveSeed(seed, `clouds:${site.id}`),
      systemEfficiency,
      fullPowerRiseC: 20,
    },
    load: {
      baseW,
      morningPeakW,
      eveningPeakW,
      noiseW,
      noiseSeed: deriveSeed(seed, `load:${site.id}`),
      applianceW,
      applianceDuty,
      applianceSeed: deriveSeed(seed, `appliance:${site.id}`),
    },
    grid: { nominalV: 230, impedanceVPerW, voltageSeed: deriveSeed(seed, `voltage:${site.id}`) },
    climate: { meanTempC: region.meanTempC, dailySwingC },
  };
}

/**
 * Plans a fleet of `sites` sites, spread round robin over the regions, each
 * with a battery, a solar inverter and a meter. Throws SimError
 * 'invalid-options' for a negative or fractional site count or an empty or
 * duplicated region list.
 */
export function planFleet(options: FleetPlanOptions): FleetPlan {
  const regions = options.regions ?? DEFAULT_REGIONS;
  const problems: string[] = [];
  if (!Number.isInteger(options.sites) || options.sites < 0) problems.push(`sites must be a non-negative integer, got ${options.sites}`);
  if (!Number.isInteger(options.seed)) problems.push(`seed must be an integer, got ${options.seed}`);
  if (regions.length === 0) problems.push('regions must not be empty');
  if (new Set(regions).size !== regions.length) problems.push('regions must be distinct');
  if (regions.some((region) => region.trim() === '')) problems.push('a region name must not be blank');
  if (problems.length > 0) throw new SimError('invalid-options', `invalid fleet plan: ${problems.join('; ')}`);

  const sites: SimSite[] = [];
  const devices: SimDeviceSpec[] = [];
  const siteParams = new Map<string, SiteParams>();
  for (let index = 0; index < options.sites; index++) {
    const id = formatSiteId(index);
    const region = regions[index % regions.length]!;
    sites.push({ id, region, name: `Site ${id.slice('site-'.length)} (${region})` });
    siteParams.set(id, planSiteParams(options.seed, { id, region }));
    for (const type of SITE_DEVICE_TYPES) devices.push({ id: formatDeviceId(id, type), type, siteId: id });
  }
  return { sites, devices, siteParams };
}
