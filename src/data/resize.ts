// A photo brought to a network's own input shape H×W×C when that is not Fashion-MNIST's 28×28×1:
// colour kept for C = 3 (R, G, B planes), grey (ITU-R 601 luma) for C = 1, EXIF orientation
// applied, transparency composited over white, and the whole picture resized to W×H by area
// averaging (stretched, as Keras's image_dataset_from_directory and torchvision's Resize((H, W))
// do). The result is bytes, NCHW, as a dataset's images are: the run's own normalisation (pixel/255,
// or per channel) then applies to it exactly as to its test set. Fashion-MNIST-like runs take
// src/data/photo.ts instead (the object cropped, the background levelled).
import { DataError } from '../errors.ts';
import { checkRgba, frameMean, lookAt, planeOf, resizePlane } from './image.ts';

/** A network's input: height, width, channels (1 grey, 3 RGB). */
export interface ImageShape {
  h: number;
  w: number;
  c: number;
}

/** What was done to a photo, for the explanation line and `--json`. */
export interface ResizeSteps {
  width: number;
  height: number;
  colour: 'grey' | 'RGB';
  transparent: boolean;
  /** EXIF orientation, 1–8 (1: as stored). */
  orientation: number;
  /** Grey photos inverted (light where they were dark): grey networks only. */
  inverted: boolean;
  to: ImageShape;
}

export interface ResizedPhoto {
  /** c·h·w bytes, channel-planar (NCHW), rows row-major. */
  bytes: Uint8Array;
  steps: ResizeSteps;
}

/**
 * RGBA pixels → the network's input shape. `invert` (grey networks only) as the plain grey path
 * decides it: 'auto' inverts when the 1-pixel frame's mean is above one half.
 */
export function resizePhoto(
  rgba: ArrayLike<number>,
  width: number,
  height: number,
  to: ImageShape,
  o: { orientation?: number; invert?: boolean | 'auto' } = {},
): ResizedPhoto {
  checkRgba(rgba, width, height);
  if (to.c !== 1 && to.c !== 3) throw new DataError(`a photo becomes 1 (grey) or 3 (RGB) channels, not ${to.c}`);
  const orientation =
    Number.isInteger(o.orientation) && o.orientation! >= 1 && o.orientation! <= 8 ? o.orientation! : 1;
  // The upright picture's planes in [0, 1]: R, G, B (c = 3) or luma (c = 1), over white where transparent.
  const channels = to.c === 1 ? (['luma'] as const) : [0, 1, 2];
  const upright = channels.map((channel) => planeOf(rgba, width, height, { orientation, channel, unit: 255, over: 1 }));
  const planes = upright.map((p) => p.gray);
  // The upright size: planeOf turned the picture as its orientation says.
  const first = upright[0]!;
  const { width: w, height: h } = first;
  let inverted = false;
  if (to.c === 1) {
    inverted = o.invert === 'auto' || o.invert === undefined ? frameMean(first) > 0.5 : o.invert;
    if (inverted) planes[0] = planes[0]!.map((v) => 1 - v);
  }
  const bytes = new Uint8Array(to.c * to.h * to.w);
  planes.forEach((plane, c) => {
    const small = resizePlane(plane, w, h, to.w, to.h);
    for (let i = 0; i < small.length; i++)
      bytes[c * to.h * to.w + i] = Math.round(Math.min(1, Math.max(0, small[i]!)) * 255);
  });
  const look = lookAt(rgba, width * height);
  return { bytes, steps: { width, height, ...look, orientation, inverted, to } };
}

/** `photo 640×480 RGB → 32×32 RGB`, `photo 300×200 RGBA, EXIF rotated → 16×16 grey, inverted`. */
export function describeResize(s: ResizeSteps): string {
  const colour = s.transparent ? (s.colour === 'RGB' ? 'RGBA' : 'grey+alpha') : s.colour;
  const turn = [0, 2, 1, 2, 3, 1, 3, 1][s.orientation - 1] ?? 0;
  const exif = turn ? `, EXIF ${['', 'rotated', 'mirrored', 'rotated and mirrored'][turn]}` : '';
  const to = `${s.to.w}×${s.to.h} ${s.to.c === 3 ? 'RGB' : 'grey'}`;
  return `photo ${s.width}×${s.height} ${colour}${exif} → ${to}${s.inverted ? ', inverted' : ''}`;
}
