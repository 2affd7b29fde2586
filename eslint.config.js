// Lint rules: the recommended sets of ESLint and typescript-eslint, with
// `any` allowed only where a comment on the line before says why.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['node_modules/**', 'data/**', 'bench/results/**', 'coverage/**', 'dashboard/dist/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: {
      globals: { process: 'readonly', Buffer: 'readonly', console: 'readonly', setTimeout: 'readonly', clearTimeout: 'readonly', setInterval: 'readonly', clearInterval: 'readonly', setImmediate: 'readonly', URL: 'readonly', fetch: 'readonly', AbortController: 'readonly', performance: 'readonly', queueMicrotask: 'readonly', structuredClone: 'readonly', NodeJS: 'readonly', TextDecoder: 'readonly', TextEncoder: 'readonly' },
    },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/no-explicit-any': 'error',
    },
  },
  // The dashboard's browser code: browser globals, and the parts' boundary
  // (only protocol types and npm packages; protocol only as `import type`,
  // since its index compiles TypeBox validators with `new Function` at load,
  // which the page's CSP forbids).
  {
    files: ['dashboard/src/**/*.{ts,tsx}'],
    languageOptions: {
      globals: { window: 'readonly', document: 'readonly', navigator: 'readonly', location: 'readonly', history: 'readonly', EventSource: 'readonly', MessageEvent: 'readonly', Event: 'readonly', KeyboardEvent: 'readonly', sessionStorage: 'readonly', localStorage: 'readonly', fetch: 'readonly', Headers: 'readonly', Response: 'readonly', AbortController: 'readonly', AbortSignal: 'readonly', DOMException: 'readonly', URL: 'readonly', URLSearchParams: 'readonly', HTMLElement: 'readonly', HTMLInputElement: 'readonly', HTMLDialogElement: 'readonly', HTMLDivElement: 'readonly', HTMLTableRowElement: 'readonly', CSS: 'readonly', ResizeObserver: 'readonly', requestAnimationFrame: 'readonly', cancelAnimationFrame: 'readonly', matchMedia: 'readonly', getComputedStyle: 'readonly', Intl: 'readonly', console: 'readonly', setTimeout: 'readonly', clearTimeout: 'readonly', setInterval: 'readonly', clearInterval: 'readonly', performance: 'readonly' },
    },
    rules: {
      '@typescript-eslint/no-restricted-imports': ['error', {
        patterns: [
          { group: ['**/protocol/**', '**/protocol/index.ts'], allowTypeImports: true, message: 'the dashboard imports protocol/index.ts as `import type` only' },
          { group: ['**/control/**', '**/store/**', '**/ingest/**', '**/broker/**', '**/notify/**', '**/dispatch/**', '**/devices-sim/**', '**/cli/**', '**/bench/**', '**/test/**'], message: 'the dashboard talks to the platform over HTTP only' },
        ],
      }],
    },
  },
);
