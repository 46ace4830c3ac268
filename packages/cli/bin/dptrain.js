#!/usr/bin/env node
// dptrain CLI entry: runs the TypeScript sources through tsx so that `npx dptrain` works right after `npm ci`.
import { register } from 'tsx/esm/api';
register();
const { main } = await import('../src/main.ts');
await main(process.argv);
