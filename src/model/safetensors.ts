// safetensors (the Hugging Face format): u64 little-endian header length, a JSON header
// {name: {dtype, shape, data_offsets: [begin, end]}, __metadata__: {string: string}}, then the data.
// Only F32 tensors are written; reading checks every offset against the file, and every value:
// NaN or ±Inf is refused here, the one place weights and optimizer state are read from bytes (the
// CLI's run directories and checkpoints, the page's files), before a GPU is opened.
import { DataError } from '../errors.ts';
import { numel } from '../ops/geometry.ts';

export interface NamedTensor {
  shape: number[];
  data: Float32Array;
}

export function encodeSafetensors(
  tensors: ReadonlyMap<string, NamedTensor>,
  metadata: Record<string, string> = {},
): Uint8Array {
  const header: Record<string, unknown> = { __metadata__: metadata };
  let offset = 0;
  const sorted = [...tensors].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  for (const [name, t] of sorted) {
    const bytes = t.data.length * 4;
    header[name] = { dtype: 'F32', shape: t.shape, data_offsets: [offset, offset + bytes] };
    offset += bytes;
  }
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - ((json.length + 8) % 8)) % 8); // keep the data 8-byte aligned
  const head = new TextEncoder().encode(json);
  const out = new Uint8Array(8 + head.length + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(head.length), true);
  out.set(head, 8);
  let at = 8 + head.length;
  for (const [, t] of sorted) {
    out.set(new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength), at);
    at += t.data.byteLength;
  }
  return out;
}

export function decodeSafetensors(
  bytes: Uint8Array,
  file = 'weights.safetensors',
): { tensors: Map<string, NamedTensor>; metadata: Record<string, string> } {
  if (bytes.length < 8) throw new DataError(`${file}: truncated: ${bytes.length} bytes, not even a header length`);
  const n = Number(new DataView(bytes.buffer, bytes.byteOffset, 8).getBigUint64(0, true));
  if (n > bytes.length - 8)
    throw new DataError(
      `${file}: truncated: the header claims ${n} bytes but the file has ${bytes.length - 8} after the length`,
    );
  let header: Record<string, { dtype?: unknown; shape?: unknown; data_offsets?: unknown } | null>;
  try {
    header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + n)));
  } catch {
    throw new DataError(`${file}: the header is not valid JSON`);
  }
  if (typeof header !== 'object' || header === null || Array.isArray(header))
    throw new DataError(`${file}: the header is not a JSON object of tensors`);
  const data = bytes.subarray(8 + n);
  const tensors = new Map<string, NamedTensor>();
  let metadata: Record<string, string> = {};
  for (const [name, info] of Object.entries(header)) {
    if (name === '__metadata__') {
      metadata = info as unknown as Record<string, string>;
      continue;
    }
    if (typeof info !== 'object' || info === null)
      throw new DataError(`${file}: tensor "${name}" is not described by an object`);
    if (info.dtype !== 'F32')
      throw new DataError(`${file}: tensor "${name}" has dtype ${info.dtype}; only F32 is supported`);
    const shape = info.shape ?? [];
    if (!Array.isArray(shape) || !shape.every((d) => Number.isInteger(d) && d >= 0))
      throw new DataError(`${file}: tensor "${name}" has an invalid shape ${JSON.stringify(shape)}`);
    const count = numel(shape as number[]);
    const [begin, end] = Array.isArray(info.data_offsets) ? info.data_offsets : [];
    if (!Number.isInteger(begin) || !Number.isInteger(end) || begin < 0 || end < begin || end > data.length) {
      throw new DataError(
        `${file}: tensor "${name}" has data offsets [${begin}, ${end}] outside the ${data.length} data bytes`,
      );
    }
    if (end - begin !== count * 4)
      throw new DataError(
        `${file}: tensor "${name}" has shape [${shape}] (${count * 4} bytes) but ${end - begin} bytes of data`,
      );
    const copy = new Float32Array(count);
    new Uint8Array(copy.buffer).set(data.subarray(begin, end));
    const bad = copy.findIndex((v) => !Number.isFinite(v));
    if (bad >= 0) throw new DataError(`${file}: tensor "${name}" holds ${copy[bad]} at index ${bad}`);
    tensors.set(name, { shape: shape as number[], data: copy });
  }
  return { tensors, metadata };
}

/**
 * Names and shapes must match the model's exactly: checked as soon as the file is read, before a
 * GPU is opened or anything loaded into it.
 */
export function checkShapes(
  tensors: ReadonlyMap<string, NamedTensor>,
  want: readonly { name: string; shape: readonly number[] }[],
  file: string,
): void {
  for (const s of want) {
    const t = tensors.get(s.name);
    if (!t) throw new DataError(`${file}: no tensor "${s.name}" (the model needs [${s.shape.join(', ')}])`);
    if (t.shape.join() !== s.shape.join())
      throw new DataError(
        `${file}: tensor "${s.name}" has shape [${t.shape.join(', ')}] but the model needs [${s.shape.join(', ')}]`,
      );
  }
}
