// fmgpu command line (placeholder until the CLI lands): --version and --help.
import pkg from '../../package.json' with { type: 'json' };

const args = process.argv.slice(2);
if (args[0] === '--version') {
  console.log(pkg.version);
} else {
  console.log('usage: fmgpu --version');
}
