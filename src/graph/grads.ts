// The gradients a backward pass collects, one per tensor (graph.ts's convention): the first contribution
// is the tensor's gradient, later ones are summed into it. The sum is made when the gradient is first read
// (`read`), so that a reader may take it in its own pass instead (`take`: the act' pass of an add, conv or
// dense layer over two terms, fuse-add.ts actGradient), or the last contributor's dX add the sum's earlier part
// as it stores (junction.ts). A gradient that is also another tensor's (an add
// hands its own to both inputs uncopied: `share`) is never added into in place, since that tensor's readers
// may run later: its sum is a new tensor.
import type { Gpu } from '../gpu/runtime.ts';
import { accumulate, add } from '../ops/elementwise.ts';
import type { FusedStep } from './fused-steps.ts';
import { numel, type Graph, type Tensor } from './graph.ts';

export class Gradients {
  /** Each trainable parameter's gradient, by name. */
  readonly params = new Map<string, Tensor>();
  private readonly shared = new Set<number>();
  /** By tensor id: contributions after the first, not yet added. */
  private readonly terms = new Map<number, Tensor[]>();

  constructor(
    private readonly gpu: Gpu,
    private readonly graph: Graph,
    /** Tensor id → its gradient (the loss step seeds the logits'). */
    private readonly of: Map<number, Tensor>,
    private readonly push: (s: FusedStep) => void,
  ) {}

  /** Gradient `g` is also another tensor's: never added into in place. */
  share(g: Tensor): void {
    this.shared.add(g.id);
  }

  /** `t`'s gradient is `g`, whatever came before (a fused kernel wrote the gradient before an activation). */
  set(t: Tensor, g: Tensor): void {
    this.of.set(t.id, g);
  }

  /** Adds `g` to `t`'s gradient (the first contribution is the gradient). */
  contribute(t: Tensor, g: Tensor): void {
    if (!this.of.has(t.id)) {
      this.of.set(t.id, g);
      if (t.kind === 'param') this.params.set(t.name, g);
      return;
    }
    this.terms.set(t.id, [...(this.terms.get(t.id) ?? []), g]);
  }

  /** `to`'s gradient is `from`'s, its pending contributions with it (an activation whose act' `to`'s node takes). */
  pass(from: Tensor, to: Tensor): void {
    const got = this.take(from);
    if (!got) return;
    this.of.set(to.id, got.grad);
    if (got.terms.length > 0) this.terms.set(to.id, got.terms);
  }

  /**
   * `t`'s gradient and its contributions not yet added, for a reader that adds up to `most` of them itself
   * (more are all added here first, a pass each: in place, or into a new tensor where shared).
   */
  take(t: Tensor, most = Infinity): { grad: Tensor; terms: Tensor[] } | undefined {
    const grad = this.of.get(t.id);
    if (!grad) return undefined;
    const terms = this.terms.get(t.id) ?? [];
    this.terms.delete(t.id);
    if (terms.length <= most) return { grad, terms };
    const sum = terms.reduce((prev, g) => this.sum(prev, g), grad);
    this.of.set(t.id, sum);
    if (t.kind === 'param') this.params.set(t.name, sum);
    return { grad: sum, terms: [] };
  }

  /** `t`'s gradient, every contribution added. */
  read(t: Tensor): Tensor | undefined {
    return this.take(t, 0)?.grad;
  }

  /** Adds every contribution not yet added (the parameters', which no node reads). */
  flush(tensors: readonly Tensor[]): void {
    for (const t of tensors) if (this.terms.has(t.id)) this.read(t);
  }

  private sum(prev: Tensor, g: Tensor): Tensor {
    const count = numel(g.shape);
    const sum = this.shared.has(prev.id) ? this.graph.tensor(prev.shape, 'temp') : prev;
    this.push({
      reads: [g, prev],
      writes: [sum],
      scratch: [],
      emit: (buf) =>
        sum === prev
          ? accumulate(this.gpu, { a: buf(g), c: buf(prev) }, count)
          : add(this.gpu, { a: buf(prev), b: buf(g), c: buf(sum) }, count),
    });
    return sum;
  }
}
