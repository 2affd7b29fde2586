/**
 * A benchmark scenario: one file in bench/scenarios/ default-exporting a
 * Scenario. The harness runs it within its time bound, shows its progress,
 * prints its table and targets, and writes everything to bench/results/.
 *
 * A scenario measures the platform against what a user would pick instead,
 * in the same run on the same machine, so that its figures are ratios as
 * well as absolute numbers. Targets are checked by the scenario and marked
 * met or missed; nothing here fails a build.
 */

export interface ScenarioContext {
  /** One line of progress, shown while the scenario runs (not stored). */
  progress(message: string): void;
  /** `key=value` arguments given after the scenario name, e.g. `npm run bench -- ingest publishers=8`. */
  args: Readonly<Record<string, string>>;
  /** A fresh folder for this run's files (databases, configs), removed afterwards. */
  workDir: string;
  /** Resolves after the scenario's time bound; scenarios should stop their phases before it. */
  deadline: number;
}

export interface Target {
  /** What is promised, e.g. "ingest messages/s". */
  name: string;
  /** The promise in words, e.g. "≥ 50,000". */
  target: string;
  measured: number;
  unit: string;
  met: boolean;
}

/** One row of the printed table; keys are column headings. */
export type Row = Record<string, string | number>;

export interface ScenarioResult {
  /** What the scenario ran with (publishers, QoS, durations, fleet size…). */
  parameters: Record<string, unknown>;
  rows: Row[];
  targets: Target[];
  /** Notes for the reader of the report (what limited a figure, what was not measured and why). */
  notes?: string[];
}

export interface Scenario {
  name: string;
  description: string;
  /** Hard bound on the whole scenario, set-up included; may depend on the arguments (e.g. a fill to do first). */
  maxDurationMs: number | ((args: Readonly<Record<string, string>>) => number);
  run(context: ScenarioContext): Promise<ScenarioResult>;
}
