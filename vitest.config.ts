import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['**/*.test.ts'],
    exclude: ['node_modules/**', 'data/**'],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    // Integration tests bind real sockets and write real SQLite files; two
    // cores run them in parallel at most two at a time.
    maxWorkers: 2,
  },
});
