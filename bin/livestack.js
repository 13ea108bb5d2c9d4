#!/usr/bin/env node
// Entry point: LiveStack is TypeScript run through tsx (no build step to forget).
import { register } from 'tsx/esm/api';

register();
const { main } = await import('../cli/main.ts');
process.exitCode = await main(process.argv.slice(2));
