// EXIF orientation (tag 0x0112 of the first image directory): how a camera says the stored pixels
// are to be turned to be shown upright. Read from a JPEG's APP1 "Exif" segment or a PNG's eXIf
// chunk; everything is bounds-checked, and anything malformed means 1 (as stored), as in browsers.

const ORIENTATION_TAG = 0x0112;
const SHORT = 3;

/** The orientation (1–8) in a TIFF structure (the body of an EXIF block after "Exif\0\0"), or 1. */
export function tiffOrientation(t: Uint8Array): number {
  if (t.length < 8) return 1;
  const little = t[0] === 0x49 && t[1] === 0x49; // "II"; "MM" is big-endian
  if (!little && !(t[0] === 0x4d && t[1] === 0x4d)) return 1;
  const view = new DataView(t.buffer, t.byteOffset, t.byteLength);
  if (view.getUint16(2, little) !== 42) return 1;
  const ifd = view.getUint32(4, little);
  if (ifd + 2 > t.length) return 1;
  const entries = view.getUint16(ifd, little);
  for (let i = 0; i < entries; i++) {
    const at = ifd + 2 + 12 * i;
    if (at + 12 > t.length) return 1;
    if (view.getUint16(at, little) !== ORIENTATION_TAG) continue;
    if (view.getUint16(at + 2, little) !== SHORT || view.getUint32(at + 4, little) < 1) return 1;
    const o = view.getUint16(at + 8, little);
    return o >= 1 && o <= 8 ? o : 1;
  }
  return 1;
}

/** The orientation in a JPEG's first APP1 "Exif" segment before its image data, or 1. */
export function jpegOrientation(b: Uint8Array): number {
  let i = 2;
  while (i + 4 <= b.length && b[i] === 0xff) {
    const marker = b[i + 1]!;
    if (marker === 0xda || marker === 0xd9) break; // start of scan, end of image: no EXIF before
    const len = (b[i + 2]! << 8) | b[i + 3]!;
    if (len < 2) break;
    const body = b.subarray(i + 4, Math.min(b.length, i + 2 + len));
    const exif = [0x45, 0x78, 0x69, 0x66, 0, 0]; // "Exif\0\0"
    if (marker === 0xe1 && exif.every((c, k) => body[k] === c)) return tiffOrientation(body.subarray(6));
    i += 2 + len;
  }
  return 1;
}
