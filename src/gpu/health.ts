// What has gone wrong on a device: uncaptured validation errors, allocations the out-of-memory
// scope caught, and device loss. Every wait on the GPU is raced against the loss, so nothing hangs
// on a dead device; check() reports the most useful error first.
import { GpuError } from '../errors.ts';

export class DeviceHealth {
  private readonly errors: string[] = [];
  /** The first allocation the out-of-memory scope caught, explained; reported before the errors it causes. */
  private outOfMemory: string | null = null;
  /** Allocation scopes not yet popped: checks wait for them, so an out-of-memory error is never missed. */
  private scopes: Promise<void>[] = [];
  private lostReason: string | null = null;
  /** Rejects once the device is lost: raced against every wait on the GPU, so nothing hangs on a dead device. */
  readonly lostSignal: Promise<never>;
  /** destroy() was called: the loss that follows is ours, not a fault. */
  closing = false;

  constructor(private readonly device: GPUDevice) {
    device.addEventListener('uncapturederror', (e) => {
      this.errors.push((e as GPUUncapturedErrorEvent).error.message);
    });
    // Any loss we did not ask for is a fault: a driver reset, a removed GPU, or a destroy() from
    // elsewhere (tests simulate a loss that way).
    this.lostSignal = device.lost.then((info) => {
      if (!this.closing) this.lostReason = `${info.reason}${info.message ? `: ${info.message.split('\n')[0]}` : ''}`;
      throw new GpuError(this.closing ? 'the GPU device was released' : this.lostMessage());
    });
    this.lostSignal.catch(() => undefined); // observed by the races below, not an unhandled rejection
  }

  private lostMessage(): string {
    return `the GPU device was lost (${this.lostReason})`;
  }

  /** Whether the device was lost (not released by destroy()). */
  get lost(): boolean {
    return this.lostReason !== null;
  }

  /** `p`, unless the device is lost first: then a GpuError that says so. */
  untilLost<T>(p: Promise<T>): Promise<T> {
    return Promise.race([p, this.lostSignal]);
  }

  /** `create()` inside an out-of-memory scope, popped asynchronously; check() waits for it. */
  allocating(label: string, size: number, live: number, create: () => GPUBuffer): GPUBuffer {
    this.device.pushErrorScope('out-of-memory');
    const buffer = create();
    this.scopes.push(
      this.device.popErrorScope().then(
        (e) => {
          if (e && this.outOfMemory === null) this.outOfMemory = outOfMemoryMessage(label, size, live, e.message);
        },
        () => undefined, // the device is gone: the loss is reported instead
      ),
    );
    return buffer;
  }

  /** Gives a loss that is on its way (a map failing as the device goes) a moment to arrive. */
  async settle(ms = 200): Promise<void> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([this.lostSignal, new Promise((r) => (timer = setTimeout(r, ms)))]).catch(() => undefined);
    clearTimeout(timer);
  }

  /**
   * Throws what went wrong since the last check: a lost device first, then an allocation that ran
   * out of memory (the validation errors that follow from its invalid buffer say nothing useful),
   * then the first validation error.
   */
  async check(): Promise<void> {
    // A lost device may never answer its scopes: the loss is what gets reported then.
    while (this.scopes.length > 0) await this.untilLost(Promise.all(this.scopes.splice(0))).catch(() => undefined);
    if (this.lostReason !== null) throw new GpuError(this.lostMessage());
    if (this.outOfMemory !== null) {
      const message = this.outOfMemory;
      this.outOfMemory = null;
      this.errors.length = 0;
      throw new GpuError(message);
    }
    const [first] = this.errors;
    if (first !== undefined) {
      this.errors.length = 0;
      throw new GpuError(`GPU error: ${first.split('\n')[0]}`);
    }
  }
}

/** One line for an allocation the out-of-memory error scope caught. */
function outOfMemoryMessage(label: string, size: number, live: number, detail: string): string {
  const mb = (n: number): string => `${(n / 2 ** 20).toLocaleString('en-US', { maximumFractionDigits: 1 })} MiB`;
  const [line = ''] = detail.split('\n');
  const why = line.trim();
  return (
    `out of GPU memory: buffer "${label}" (${mb(size)}) could not be allocated with ${mb(live)} already in use` +
    `${why ? ` (${why})` : ''}: use a smaller batch or a smaller model`
  );
}
