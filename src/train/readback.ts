// The loss and accuracy totals read back without draining the queue: a ring of small MAP_READ
// buffers, made once per training plan. Each submit ends with a copy of the stats into the next
// slot, whose map is started and not awaited; the host waits only to reuse a slot, for the submit
// `depth` back, so up to `depth` submits stay in flight while the next one is recorded.
import type { Gpu } from '../gpu/runtime.ts';

/** What a slot's read is for: the steps done by its submit, and whether fit reports them. */
export interface StatsMark {
  done: number;
  report: boolean;
}

export interface StatsRead {
  mark: StatsMark;
  lossSum: number;
  correct: number;
}

export class StatsRing {
  private readonly slots: GPUBuffer[];
  private readonly pending: { slot: GPUBuffer; mark: StatsMark; mapped: Promise<void> }[] = [];
  private next = 0;

  constructor(
    private readonly gpu: Gpu,
    readonly depth = 3,
  ) {
    const usage = GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST;
    this.slots = Array.from({ length: depth }, (_, i) => gpu.alloc(8, `stats read-back ${i}`, usage));
  }

  /** Submits whose reads are not yet taken. */
  get inFlight(): number {
    return this.pending.length;
  }

  /** Whether every slot waits on a submit: take() the oldest before the next submit. */
  get full(): boolean {
    return this.pending.length >= this.depth;
  }

  /** Ends `enc` with a copy of the stats (f32 loss sum, u32 correct count) into a slot, submits, maps the slot. */
  submit(enc: GPUCommandEncoder, stats: GPUBuffer, mark: StatsMark): void {
    const slot = this.slots[this.next];
    if (!slot || this.full) throw new Error('every read-back slot is in use: take() the oldest first');
    this.next = (this.next + 1) % this.depth;
    enc.copyBufferToBuffer(stats, 0, slot, 0, 8);
    this.gpu.device.queue.submit([enc.finish()]);
    const mapped = this.gpu.mapRead(slot, 'loss/accuracy stats');
    mapped.catch(() => undefined); // observed by take() or settle()
    this.pending.push({ slot, mark, mapped });
  }

  /** The oldest submit's stats, once it has run (throws what went wrong on the GPU meanwhile). */
  async take(): Promise<StatsRead> {
    const p = this.pending.shift();
    if (!p) throw new Error('no read-back in flight');
    await p.mapped;
    const v = new DataView(p.slot.getMappedRange(0, 8));
    const read = { mark: p.mark, lossSum: v.getFloat32(0, true), correct: v.getUint32(4, true) };
    p.slot.unmap();
    return read;
  }

  /** Waits out every read still in flight and frees its slot (after an error: nothing is reported). */
  async settle(): Promise<void> {
    for (const p of this.pending.splice(0))
      if (
        await p.mapped.then(
          () => true,
          () => false,
        )
      )
        p.slot.unmap();
  }

  release(): void {
    for (const s of this.slots) this.gpu.release(s);
    this.slots.length = 0;
  }
}
