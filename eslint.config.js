// Lint: ESLint's and typescript-eslint's recommended rules, and the workflow sandbox's own rule.
import { builtinModules } from 'node:module';
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

/** What workflow code may not import (values; types are fine): it runs in Temporal's deterministic sandbox. */
const NOT_IN_WORKFLOWS = [
  { group: ['node:*', ...builtinModules], message: 'workflows run in a deterministic sandbox: no Node built-ins (use an activity)' },
  {
    group: ['@temporalio/client', '@temporalio/worker', '@temporalio/activity', 'pg', 'pg-*', 'fastify', '@fastify/*', 'pino', '@opentelemetry/*', 'zod'],
    message: 'workflows may not load modules with side effects or I/O (use an activity)',
  },
  {
    group: ['../db/*', '../activities/*', '../client/*', '../http/*', '../cli/*', '../cluster/*', '../dev/*', '../telemetry/*', '../metrics/*', '../config.ts'],
    message: 'workflows may import only pure modules (shared.ts, taskmgr input and types, other workflow files)',
  },
];

export default tseslint.config(
  { ignores: ['node_modules/**', 'bench/results/**', 'docs/**', 'src/http/public/vendor/**', 'tools/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: { ecmaVersion: 2022, sourceType: 'module' },
    rules: {
      // `_name` marks a value left out on purpose (destructuring to drop a field).
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_', destructuredArrayIgnorePattern: '^_', ignoreRestSiblings: true },
      ],
    },
  },
  {
    // Tests read JSON answers field by field.
    files: ['test/**/*.ts'],
    rules: { '@typescript-eslint/no-explicit-any': 'off' },
  },
  {
    files: ['src/workflows/**/*.ts'],
    rules: { '@typescript-eslint/no-restricted-imports': ['error', { patterns: NOT_IN_WORKFLOWS.map((p) => ({ ...p, allowTypeImports: true })) }] },
  },
  {
    // The page's script runs in the browser.
    files: ['src/http/public/**/*.js'],
    languageOptions: {
      sourceType: 'script',
      globals: {
        Node: 'readonly',
        FormData: 'readonly',
        window: 'readonly',
        document: 'readonly',
        fetch: 'readonly',
        location: 'readonly',
        performance: 'readonly',
        confirm: 'readonly',
        setTimeout: 'readonly',
        clearTimeout: 'readonly',
        setInterval: 'readonly',
        clearInterval: 'readonly',
        URLSearchParams: 'readonly',
        console: 'readonly',
        uPlot: 'readonly',
        localStorage: 'readonly',
        sessionStorage: 'readonly',
        navigator: 'readonly',
        history: 'readonly',
        Intl: 'readonly',
        ResizeObserver: 'readonly',
        HTMLElement: 'readonly',
        Event: 'readonly',
        alert: 'readonly',
      },
    },
  },
  {
    files: ['bin/**/*.js', 'scripts/**/*.ts', 'bench/**/*.ts', 'test/**/*.ts', 'src/**/*.ts', 'eslint.config.js'],
    languageOptions: {
      globals: {
        process: 'readonly',
        console: 'readonly',
        Buffer: 'readonly',
        setTimeout: 'readonly',
        clearTimeout: 'readonly',
        setInterval: 'readonly',
        clearInterval: 'readonly',
        setImmediate: 'readonly',
        URL: 'readonly',
        fetch: 'readonly',
        AbortController: 'readonly',
        AbortSignal: 'readonly',
        performance: 'readonly',
        structuredClone: 'readonly',
        TextEncoder: 'readonly',
        TextDecoder: 'readonly',
        queueMicrotask: 'readonly',
      },
    },
  },
);
