// What the page must have, looked up with a check: a missing element or canvas context is a broken
// page, reported by name instead of a null that fails somewhere later.

/** The page's element `#id`. */
export function byId(id: string): HTMLElement {
  const e = document.getElementById(id);
  if (!e) throw new Error(`the page has no element #${id}`);
  return e;
}

/** The canvas's 2D context. */
export function context2d(
  canvas: HTMLCanvasElement,
  settings?: CanvasRenderingContext2DSettings,
): CanvasRenderingContext2D {
  const g = canvas.getContext('2d', settings);
  if (!g) throw new Error('this browser gives no 2D canvas context');
  return g;
}
