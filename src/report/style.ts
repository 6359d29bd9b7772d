// The report's inline stylesheet, the legend hover on the PCA scatter included: report.html runs no
// script. System fonts only: the page must not fetch anything.

export const STYLE = `
:root {
  --bg: #f3f5f8; --card: #fff; --ink: #1c2430; --muted: #667085; --line: #e3e7ee; --blue: #2f6db5; --red: #d9483b;
  --green: #2e9e5b;
}
* { box-sizing: border-box; }
body {
  margin: 0; background: var(--bg); color: var(--ink);
  font: 14px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif;
}
main { max-width: 1200px; margin: 0 auto; padding: 28px 24px 40px; }
header {
  background: linear-gradient(135deg, #1f3a5f, #2f6db5); color: #fff; border-radius: 14px; padding: 22px 26px 20px;
  margin-bottom: 22px; box-shadow: 0 6px 20px rgba(31, 58, 95, .18);
}
header .brand { font-size: 12px; letter-spacing: .12em; text-transform: uppercase; opacity: .75; }
header h1 { margin: 2px 0 0; font-size: 26px; font-weight: 650; word-break: break-all; }
header .muted { color: rgba(255, 255, 255, .75); margin: 0 0 16px; }
.tiles { display: grid; grid-template-columns: repeat(auto-fit, minmax(150px, 1fr)); gap: 12px; }
.tile {
  background: rgba(255, 255, 255, .12); border: 1px solid rgba(255, 255, 255, .18); border-radius: 10px;
  padding: 10px 14px;
}
.tile .k { font-size: 12px; opacity: .8; }
.tile .v { font-size: 26px; font-weight: 650; font-variant-numeric: tabular-nums; line-height: 1.2; }
.tile .sub { font-size: 12px; opacity: .7; }
section {
  background: var(--card); border: 1px solid var(--line); border-radius: 14px; padding: 18px 22px 20px;
  margin-bottom: 20px; box-shadow: 0 1px 3px rgba(16, 24, 40, .05);
}
h2 { font-size: 17px; margin: 0 0 12px; font-weight: 650; }
.muted { color: var(--muted); }
.note { color: var(--muted); margin: -4px 0 12px; font-size: 13px; }
.two { display: grid; grid-template-columns: 1fr 1fr; gap: 24px; align-items: start; }
.two.top { grid-template-columns: minmax(240px, 1fr) 2fr; }
@media (max-width: 900px) { .two, .two.top { grid-template-columns: 1fr; } }
dl.info { display: grid; grid-template-columns: max-content 1fr; gap: 6px 16px; margin: 0; }
dl.info dt { color: var(--muted); }
dl.info dd { margin: 0; font-variant-numeric: tabular-nums; word-break: break-word; }
pre {
  margin: 0; background: #f7f8fa; border: 1px solid var(--line); border-radius: 8px; padding: 10px 12px;
  font: 12px/1.45 ui-monospace, "SF Mono", Menlo, Consolas, "DejaVu Sans Mono", monospace; overflow-x: auto;
}
details { margin-top: 8px; }
summary { cursor: pointer; color: var(--blue); }
svg { width: 100%; height: auto; display: block; font-family: inherit; }
svg .ctitle { font-size: 14px; font-weight: 650; fill: var(--ink); }
svg .tick { font-size: 11px; fill: var(--muted); }
svg .alabel { font-size: 12px; fill: var(--muted); }
svg .grid { stroke: var(--line); stroke-width: 1; }
svg .axis { stroke: #b8c0cc; stroke-width: 1; }
svg line.mark { stroke: #6b7280; stroke-width: 1.2; }
svg .line { stroke-width: 2.2; stroke-linejoin: round; }
svg .count {
  font-size: 11.5px; font-weight: 600; fill: #2a3340; font-variant-numeric: tabular-nums; pointer-events: none;
}
svg .count.light { fill: #fff; }
svg .cell:hover { stroke: var(--ink); stroke-width: 1.5; }
.heatmap { max-width: 600px; }
table.classes { border-collapse: collapse; width: 100%; font-variant-numeric: tabular-nums; }
table.classes th {
  text-align: right; font-weight: 600; color: var(--muted); font-size: 12px; padding: 6px 8px;
  border-bottom: 1px solid var(--line);
}
table.classes th:first-child { text-align: left; }
table.classes td { padding: 5px 8px; border-bottom: 1px solid #f0f2f5; white-space: nowrap; }
table.classes tr.avg td { font-weight: 600; border-top: 1px solid var(--line); border-bottom: 0; }
td.num { text-align: right; position: relative; }
td.num .bar {
  position: absolute; left: 8px; right: 8px; bottom: 4px; height: 3px; border-radius: 2px;
  background: linear-gradient(90deg, var(--blue) var(--w), #edf0f4 var(--w));
}
.swatch { display: inline-block; width: 10px; height: 10px; border-radius: 3px; margin-right: 8px; vertical-align: 0; }
.grid { display: grid; grid-template-columns: repeat(auto-fill, minmax(128px, 1fr)); gap: 10px; }
figure.sample {
  margin: 0; padding: 8px; border-radius: 10px; border: 1px solid var(--line); background: #fbfcfd; text-align: center;
}
figure.sample.bad { border-color: #f1b4ad; background: #fff6f5; }
figure.sample img {
  image-rendering: pixelated; width: 84px; height: 84px; border-radius: 6px; display: block; margin: 0 auto 6px;
  background: #000;
}
figure.sample figcaption { font-size: 12px; line-height: 1.35; }
figure.sample .pred { font-weight: 650; }
figure.sample.bad .pred { color: var(--red); }
figure.sample.ok .pred { color: var(--green); }
figure.sample .prob { color: var(--muted); font-variant-numeric: tabular-nums; }
figure.sample .truth { display: block; color: var(--muted); }
figure.sample.bad .truth { color: var(--ink); }
.pca { display: grid; grid-template-columns: minmax(0, 1fr) 180px; gap: 16px; align-items: start; }
.pca .cls circle { fill-opacity: .72; transition: opacity .15s; }
ul.legend { list-style: none; margin: 8px 0 0; padding: 0; }
ul.legend li { padding: 4px 8px; border-radius: 6px; cursor: default; }
ul.legend li:hover { background: #f0f3f7; }
footer { color: var(--muted); font-size: 12px; text-align: center; margin-top: 8px; }
`;

/**
 * Hovering a class in the PCA legend fades the other classes' points: a rule per class, in CSS
 * (`:has`), so the report runs no script.
 */
export function legendStyle(classes: number): string {
  return Array.from(
    { length: classes },
    (_, c) => `.pca:has(li[data-class="${c}"]:hover) .cls:not([data-class="${c}"]) { opacity: .08; }`,
  ).join('\n');
}
