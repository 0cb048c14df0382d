// ESLint for lessoncast: typescript-eslint's type-aware rules over Node code (tsconfig.json) and
// the browser pages (web/tsconfig.json); Prettier owns layout, so eslint-config-prettier turns
// ESLint's layout rules off. Run by `npm run lint` (scripts/lint.sh) and by `npm test`.
import js from '@eslint/js';
import prettier from 'eslint-config-prettier';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import tseslint from 'typescript-eslint';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

export default tseslint.config(
  { ignores: ['**/node_modules/**', 'dist/**', 'web/dist/**', 'web/.dist-*/**', 'bench/results/**', 'recordings/**', 'test-artifacts/**', '.tap/**', '**/*.mjs', '**/*.js'] },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: root },
    },
    linterOptions: { reportUnusedDisableDirectives: 'error' },
    rules: {
      // Unused names are errors, except the `_`-prefixed ones we keep on purpose (destructuring out, callbacks).
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none', ignoreRestSiblings: true }],
      // A promise nobody awaits must say so (`void`): lost rejections are how servers die quietly.
      // tap's t.test() is the exception: tap itself awaits the subtests it is handed.
      '@typescript-eslint/no-floating-promises': ['error', { allowForKnownSafePromises: [{ from: 'package', name: 'PromiseWithSubtest', package: '@tapjs/core' }] }],
      // `async` marks what callers must await, also where the body happens not to (protocol handlers, ports).
      '@typescript-eslint/require-await': 'off',
      // Event listeners that are async are fine when they handle their own errors; Node ignores the returned promise.
      '@typescript-eslint/no-misused-promises': ['error', { checksVoidReturn: { arguments: false, attributes: false } }],
      '@typescript-eslint/consistent-type-imports': ['error', { fixStyle: 'inline-type-imports' }],
      // `== null` is the one loose comparison we mean: null or undefined.
      'eqeqeq': ['error', 'always', { null: 'ignore' }],
      'no-console': 'off',
      // Our option interfaces declare callbacks as methods (\`onRefused(): void\`) and pass them on;
      // none of them uses \`this\`, which is all this rule guards against.
      '@typescript-eslint/unbound-method': 'off',
    },
  },
  {
    // Tests and benches drive real clients with loosely typed JSON (mediasoup dumps, stats, SDP):
    // the unsafe-any family would only add casts there.
    files: ['test/**/*.ts', 'bench/**/*.ts', 'kit/**/*.ts'],
    rules: {
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-unsafe-member-access': 'off',
      '@typescript-eslint/no-unsafe-call': 'off',
      '@typescript-eslint/no-unsafe-argument': 'off',
      '@typescript-eslint/no-unsafe-return': 'off',
      // Chromium's page.evaluate callbacks reach the pages' own globals.
      '@typescript-eslint/no-explicit-any': 'off',
    },
  },
  prettier,
);
