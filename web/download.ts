// A file download from the page: bytes offered to the user through a blob: URL (nothing leaves
// the machine). DOM work, so it lives with the page, not in the engine's bundle entry (src/web.ts).

/** Offers `bytes` to the user as the file `filename`. */
export function downloadBytes(bytes: Uint8Array, filename: string, type = 'application/octet-stream'): void {
  const url = URL.createObjectURL(new Blob([bytes as BlobPart], { type }));
  const a = document.createElement('a');
  a.href = url;
  a.download = filename;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}
