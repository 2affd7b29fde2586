import { Type } from '@sinclair/typebox';
import { IsoTimeSchema, Nullable } from './common.ts';

export const ComponentHealthSchema = Type.Object({ ok: Type.Boolean(), detail: Type.Optional(Type.String()) });

export const PipelineFiguresSchema = Type.Object(
  {
    heartbeatAt: IsoTimeSchema,
    heartbeatAgeMs: Type.Integer({ minimum: 0, description: 'age of the heartbeat when the report was made; the figures are that old' }),
    inflight: Type.Optional(Type.Integer({ minimum: 0, description: 'messages received and not yet acknowledged' })),
    oldestUnackedAgeMs: Type.Optional(Nullable(Type.Integer({ minimum: 0 }))),
    lastCommitAt: Type.Optional(Nullable({ ...IsoTimeSchema, description: 'null when nothing was committed since ingest started' })),
    stalled: Type.Optional(Type.Boolean({ description: 'messages wait and nothing was committed for longer than ingest\'s stall bound' })),
  },
  { description: 'figures of ingest\'s latest heartbeat; absent before the first one' },
);

export const HealthReportSchema = Type.Object(
  {
    ok: Type.Boolean(),
    components: Type.Record(Type.String(), ComponentHealthSchema, {
      description: 'broker, pipeline, store, … each with its own verdict',
    }),
    pipeline: Type.Optional(PipelineFiguresSchema),
  },
  { title: 'HealthReport' },
);
