// ONNX files: models from src/model/onnx.ts encoded by protobufjs through the ONNX project's schema as
// the npm package onnx-proto ships it (onnx.proto of ONNX 1.10.2 compiled by protobufjs: ModelProto at
// IR version 8, which carries any opset number; the operators' definitions are not part of it).
// src/model/onnx.ts spells fields as onnx.proto does (snake_case, as every ONNX document does); the
// compiled code takes them in camelCase, so the names are turned on the way in and out.
import onnxProto from 'onnx-proto';
import type { OnnxModel } from '../model/onnx.ts';

const { ModelProto } = onnxProto.onnx;

type Tree = unknown;

/** Every object key of `v` renamed by `rename`, deeply; arrays mapped, typed arrays and scalars kept. */
function renameKeys(v: Tree, rename: (key: string) => string): Tree {
  if (Array.isArray(v)) return v.map((x) => renameKeys(x, rename));
  if (v === null || typeof v !== 'object' || ArrayBuffer.isView(v)) return v;
  return Object.fromEntries(Object.entries(v).map(([k, x]) => [rename(k), renameKeys(x, rename)]));
}

const camel = (k: string): string => k.replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase());
const snake = (k: string): string => k.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);

/** The model's protobuf bytes; a model that does not fit the schema is a bug, named by its field. */
export function encodeOnnx(model: OnnxModel): Uint8Array {
  const object = renameKeys(model, camel) as Record<string, unknown>;
  const wrong = ModelProto.verify(object);
  if (wrong) throw new Error(`the ONNX model does not fit onnx.proto: ${wrong}`);
  return ModelProto.encode(ModelProto.fromObject(object)).finish();
}

/** An ONNX file's ModelProto as a plain object in onnx.proto's field names (int64 as numbers): for checks. */
export function decodeOnnx(bytes: Uint8Array): Record<string, unknown> {
  const object = ModelProto.toObject(ModelProto.decode(bytes), { longs: Number, defaults: false });
  return renameKeys(object, snake) as Record<string, unknown>;
}
