// A path as a word to paste into a POSIX shell: as it is where it holds only characters no shell reads
// specially, else in single quotes (a quote inside written '\''), so `--resume my run` is never advised.

const PLAIN = /^[A-Za-z0-9_./:=@%+,-]+$/;

export function shellWord(s: string): string {
  return PLAIN.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}
