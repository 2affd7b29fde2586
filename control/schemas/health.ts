import { Type } from '@sinclair/typebox';

export const HealthReportSchema = Type.Object(
  {
    ok: Type.Boolean(),
    components: Type.Record(
      Type.String(),
      Type.Object({ ok: Type.Boolean(), detail: Type.Optional(Type.String()) }),
      { description: 'broker, pipeline, store, … each with its own verdict' },
    ),
  },
  { title: 'HealthReport' },
);
