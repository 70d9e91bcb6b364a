import js from '@eslint/js'
import stylistic from '@stylistic/eslint-plugin'
import tseslint from 'typescript-eslint'

export default tseslint.config(
  { ignores: ['dist/', 'node_modules/', 'data/', 'coverage/', 'bench/results/'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }]
    }
  },
  {
    files: ['src/**/*.ts'],
    rules: { 'no-console': 'error' }
  },
  // One formatting style for every TypeScript file, the simulator's included (eslint --fix applies it).
  {
    files: ['**/*.ts'],
    plugins: { '@stylistic': stylistic },
    rules: {
      '@stylistic/semi': ['error', 'never'],
      '@stylistic/quotes': ['error', 'single', { avoidEscape: true, allowTemplateLiterals: 'always' }],
      '@stylistic/space-before-function-paren': ['error', { anonymous: 'always', named: 'never', asyncArrow: 'always' }],
      '@stylistic/comma-dangle': ['error', 'never'],
      '@stylistic/eol-last': ['error', 'always'],
      '@stylistic/no-trailing-spaces': 'error',
      '@stylistic/keyword-spacing': 'error',
      '@stylistic/space-infix-ops': 'error',
      '@stylistic/arrow-spacing': 'error'
    }
  },
  // The operator console: browser modules, served as they are. Markup is never parsed from text
  // (el() in console.js makes every element), so the HTML-parsing sinks are refused here.
  {
    files: ['src/console/**/*.js'],
    languageOptions: {
      sourceType: 'module',
      globals: { window: 'readonly', document: 'readonly', location: 'readonly', sessionStorage: 'readonly', fetch: 'readonly', URL: 'readonly', URLSearchParams: 'readonly', setTimeout: 'readonly', clearTimeout: 'readonly', Node: 'readonly' }
    },
    rules: {
      'no-restricted-properties': ['error',
        { property: 'innerHTML', message: 'Use el() and text nodes' },
        { property: 'outerHTML', message: 'Use el() and text nodes' },
        { property: 'insertAdjacentHTML', message: 'Use el() and text nodes' },
        { property: 'srcdoc', message: 'No markup from text' },
        { object: 'document', property: 'write', message: 'Use el() and text nodes' },
        { object: 'document', property: 'writeln', message: 'Use el() and text nodes' }
      ],
      'no-restricted-globals': ['error', 'eval'],
      'no-implied-eval': 'error',
      'no-new-func': 'error'
    }
  },
  {
    files: ['scripts/**/*.mjs'],
    languageOptions: { globals: { process: 'readonly', console: 'readonly', URL: 'readonly', setTimeout: 'readonly', clearTimeout: 'readonly', fetch: 'readonly', Buffer: 'readonly', performance: 'readonly', setInterval: 'readonly', clearInterval: 'readonly', AbortSignal: 'readonly' } }
  }
)
