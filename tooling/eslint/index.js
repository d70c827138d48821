// Shared flat config: typescript-eslint's recommended rules plus the project's naming habits.
import tseslint from 'typescript-eslint';

export default tseslint.config(
  // *.bundled_*.mjs: the temporary file tsup writes while it loads its config; a build running beside the lint
  // deletes it between ESLint's file listing and its read.
  { ignores: ['dist/**', 'node_modules/**', '**/*.d.ts', '**/*.bundled_*.mjs'] },
  ...tseslint.configs.recommended,
  {
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/consistent-type-imports': 'error',
      'no-console': 'off',
    },
  },
);
