#!/usr/bin/env node
// The fmgpu command: runs the bundle that `npm run build` writes.
import '../dist/cli.js';
