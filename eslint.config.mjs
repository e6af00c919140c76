// ESLint 9 flat config (run by scripts/lint.sh after tsc; type-aware, so it
// needs build/ like tsc does). typescript-eslint's recommendedTypeChecked set
// over every TypeScript file in tsconfig.json (wrappers, scripts, tests, runner,
// sdk, demo, bench, root *.ts), plus correctness rules for code that moves
// money: promises that are never awaited, awaits of non-promises, non-exhaustive
// switches over unions, numeric arrays sorted as strings, loose equality.
// No formatting rules: the TypeScript keeps its own style.
import eslint from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
    {
        ignores: ['build/', 'node_modules/', 'temp/', 'coverage/', 'dist/', 'contracts/', 'docs/', 'gas/'],
    },
    {
        linterOptions: {
            // A disable comment that no longer suppresses anything is an error.
            reportUnusedDisableDirectives: 'error',
        },
    },
    eslint.configs.recommended,
    tseslint.configs.recommendedTypeChecked,
    {
        files: ['**/*.ts'],
        languageOptions: {
            parserOptions: {
                projectService: true,
                tsconfigRootDir: import.meta.dirname,
            },
        },
        rules: {
            // --- promises (no-floating-promises, no-misused-promises, await-thenable,
            // require-await, only-throw-error come from recommendedTypeChecked) ---
            // A promise returned inside try/catch without await escapes the catch.
            '@typescript-eslint/return-await': ['error', 'in-try-catch'],
            // `void` is only for discarding a call's result (a deliberate fire-and-forget).
            '@typescript-eslint/no-meaningless-void-operator': 'error',
            '@typescript-eslint/use-unknown-in-catch-callback-variable': 'error',

            // --- values and control flow ---
            // `x == null` (null or undefined) is the one loose comparison allowed.
            eqeqeq: ['error', 'always', { null: 'ignore' }],
            // A switch over a union lists every member, or says `default:` (an explicit
            // catch-all, as the receipt tests' "every other field" cases are).
            '@typescript-eslint/switch-exhaustiveness-check': [
                'error',
                { considerDefaultExhaustiveForUnions: true },
            ],
            // [3n, 20n].sort() sorts as strings (20n before 3n).
            '@typescript-eslint/require-array-sort-compare': ['error', { ignoreStringArrays: true }],
            '@typescript-eslint/no-misused-spread': 'error',
            '@typescript-eslint/no-deprecated': 'error',
            'no-self-compare': 'error',
            'no-unmodified-loop-condition': 'error',
            'no-unreachable-loop': 'error',
            'no-template-curly-in-string': 'error',
            'array-callback-return': 'error',
            'default-case-last': 'error',
            'no-constructor-return': 'error',
            radix: 'error',

            // --- relaxed, each for a reason ---
            // Unused names are errors, but a leading underscore marks one kept on purpose
            // (a parameter an interface requires, a tuple slot skipped).
            '@typescript-eslint/no-unused-vars': [
                'error',
                {
                    argsIgnorePattern: '^_',
                    varsIgnorePattern: '^_',
                    caughtErrorsIgnorePattern: '^_',
                    destructuredArrayIgnorePattern: '^_',
                },
            ],
            // `let { a, b } = ...` with only b reassigned stays one destructuring, and a
            // `let` that a callback reads before its one assignment cannot become const.
            'prefer-const': ['error', { destructuring: 'all', ignoreReadBeforeAssign: true }],
        },
    },
    {
        // This file and any other plain JavaScript: no tsconfig covers them.
        files: ['**/*.{js,mjs,cjs}'],
        extends: [tseslint.configs.disableTypeChecked],
    },
);
