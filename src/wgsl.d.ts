// `.wgsl` files are imported as their source text (esbuild's text loader; a vitest plugin does the same).
declare module '*.wgsl' {
  const source: string;
  export default source;
}
