// The .net editor: a textarea with a line-number gutter, the live summary, and the language's
// errors inline (the offending line marked in the gutter, the esbuild-style message below;
// clicking the message selects the span in the source). Models are checked against the data's
// class count and image shape once it is known (`configure`).
import { tryParseNet, summarize, formatError, type CheckOptions, type DslError, type ModelIR } from '../src/web.ts';
import { byId } from './dom.ts';

export interface Editor {
  readonly source: () => string;
  set(text: string): void;
  /** The model as it stands, or null while the source has an error. */
  readonly model: () => ModelIR | null;
  /** Checks with these options from now on (the data's classes and input), and at once. */
  configure(o: CheckOptions): void;
  /** How models are checked now. */
  readonly options: () => CheckOptions;
}

export function editor(opts: { onModel(ir: ModelIR | null): void; file?: string; check?: CheckOptions }): Editor {
  const area = document.getElementById('source') as HTMLTextAreaElement;
  const gutter = byId('gutter');
  const errors = byId('errors');
  const summary = byId('summary');
  const file = opts.file ?? 'model.net';
  let checkWith: CheckOptions = opts.check ?? {};
  let current: ModelIR | null = null;
  let error: DslError | null = null;
  let timer = 0;

  const renderGutter = (): void => {
    const lines = area.value.split('\n').length;
    const bad = error?.line ?? -1;
    const parts: Node[] = [];
    for (let i = 1; i <= lines; i++) {
      const s = document.createElement('span');
      s.textContent = String(i);
      if (i === bad) s.className = 'err';
      parts.push(s, document.createTextNode('\n'));
    }
    gutter.replaceChildren(...parts);
    gutter.scrollTop = area.scrollTop;
  };

  const check = (): void => {
    const source = area.value;
    const r = tryParseNet(source, file, checkWith);
    if (r.ok) {
      current = r.ir;
      error = null;
      errors.hidden = true;
      errors.textContent = '';
      const pre = document.createElement('pre');
      pre.className = 'totals';
      pre.textContent = summarize(r.ir);
      summary.replaceChildren(pre);
      summary.classList.remove('stale');
    } else {
      current = null;
      error = r.error;
      errors.hidden = false;
      errors.textContent = formatError(r.error);
      errors.dataset.line = String(r.error.line);
      errors.dataset.column = String(r.error.column);
      summary.classList.add('stale');
    }
    renderGutter();
    opts.onModel(current);
  };

  area.addEventListener('input', () => {
    renderGutter();
    clearTimeout(timer);
    timer = window.setTimeout(check, 120);
  });
  area.addEventListener('scroll', () => (gutter.scrollTop = area.scrollTop));
  area.addEventListener('keydown', (e) => {
    // Tab indents (inside residual blocks) instead of leaving the editor.
    if (e.key !== 'Tab' || e.shiftKey) return;
    e.preventDefault();
    area.setRangeText('  ', area.selectionStart, area.selectionEnd, 'end');
    area.dispatchEvent(new Event('input'));
  });
  errors.addEventListener('click', () => {
    if (!error) return;
    area.focus();
    area.setSelectionRange(error.offset, error.offset + Math.max(1, error.length));
  });

  return {
    source: () => area.value,
    set(text: string) {
      area.value = text;
      check();
    },
    model: () => current,
    configure(o: CheckOptions) {
      checkWith = o;
      check();
    },
    options: () => checkWith,
  };
}
