// The training form's epochs, batch, lr and validation fields show the model's `train` line, as
// the file writes it (or its defaults). A value typed into a field overrides the file for the runs
// that follow, until the file changes that setting: then the field shows the file's again.
import type { ModelIR } from '../src/web.ts';

const FIELDS = ['epochs', 'batch', 'lr', 'validation'] as const;
/** What each field was last given from the file. */
const fromFile = new Map<string, string>();

/** Shows the settings of `ir`'s train line that changed since last shown; nothing while the source has an error. */
export function showTrainLine(ir: ModelIR | null): void {
  if (!ir) return;
  for (const key of FIELDS) {
    const v = ir.train[key];
    // A validation that is not a fraction (the test set) has no number to show.
    const text = typeof v === 'number' ? String(v) : '';
    if (fromFile.get(key) === text) continue;
    fromFile.set(key, text);
    (document.getElementById(key) as HTMLInputElement).value = text;
  }
}

/** An editor's onModel: the form shows the model's train line, then `then` runs. */
export const showingTrainLine =
  (then: () => void) =>
  (ir: ModelIR | null): void => {
    showTrainLine(ir);
    then();
  };
