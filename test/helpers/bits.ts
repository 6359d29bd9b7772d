// Bit-for-bit comparison of two float arrays, naming the first difference (a plain toEqual on large
// arrays makes a diff too big to print, and calls 0 and −0 equal).
import { expect } from 'vitest';

export function expectSameBits(what: string, a: Float32Array, b: Float32Array): void {
  expect(a.length, `${what}: length`).toBe(b.length);
  const [x, y] = [new Uint32Array(a.buffer, a.byteOffset, a.length), new Uint32Array(b.buffer, b.byteOffset, b.length)];
  const i = x.findIndex((v, j) => v !== y[j]);
  expect(i, i < 0 ? what : `${what}: first difference at ${i}, ${a[i]} against ${b[i]}`).toBe(-1);
}
