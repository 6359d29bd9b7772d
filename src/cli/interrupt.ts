// Signals as commands see them: one event per Ctrl-C. fmgpu runs as a child of bin/fmgpu.js, which
// passes on the signals it gets (a `kill -INT` aimed at fmgpu reaches only it); a Ctrl-C on a
// terminal reaches both processes at once, so this one gets it twice within a few milliseconds.
// Two deliveries that close together are one Ctrl-C; a person's second press comes much later.
const SAME_SIGNAL_MS = 100;

type Name = 'SIGINT' | 'SIGTERM';

const handlers: Record<Name, Set<() => void>> = { SIGINT: new Set(), SIGTERM: new Set() };
const last: Record<Name, number> = { SIGINT: -Infinity, SIGTERM: -Infinity };
const listeners: Record<Name, () => void> = { SIGINT: () => deliver('SIGINT'), SIGTERM: () => deliver('SIGTERM') };

function deliver(name: Name): void {
  const now = performance.now();
  if (now - last[name] < SAME_SIGNAL_MS) return;
  last[name] = now;
  for (const f of [...handlers[name]]) f();
}

/**
 * Calls `fn` on each Ctrl-C (SIGINT) or SIGTERM until the returned function is called. While no
 * handler is registered, the signal does what it does by default: it ends the process.
 */
export function onSignal(name: Name, fn: () => void): () => void {
  if (handlers[name].size === 0) process.on(name, listeners[name]);
  handlers[name].add(fn);
  return () => {
    handlers[name].delete(fn);
    if (handlers[name].size === 0) process.off(name, listeners[name]);
  };
}
