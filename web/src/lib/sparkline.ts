/** A tiny SVG line of recent values (no chart library: a few numbers over time is all the control room needs). */
const SVG = 'http://www.w3.org/2000/svg';

export function sparkline(
  values: Array<number | null>,
  opts: { width?: number; height?: number; max?: number; label: string },
): SVGSVGElement {
  const width = opts.width ?? 120;
  const height = opts.height ?? 28;
  const svg = document.createElementNS(SVG, 'svg');
  svg.setAttribute('viewBox', `0 0 ${width} ${height}`);
  svg.setAttribute('width', String(width));
  svg.setAttribute('height', String(height));
  svg.setAttribute('role', 'img');
  svg.setAttribute('aria-label', opts.label);
  svg.classList.add('spark');
  const finite = values.filter((v): v is number => typeof v === 'number' && Number.isFinite(v));
  if (finite.length < 2) return svg;
  const max = Math.max(opts.max ?? 0, ...finite, 1e-9);
  const step = width / Math.max(1, values.length - 1);
  let d = '';
  values.forEach((v, i) => {
    if (typeof v !== 'number' || !Number.isFinite(v)) return;
    const x = (i * step).toFixed(1);
    const y = (height - 2 - (v / max) * (height - 4)).toFixed(1);
    d += `${d === '' || values[i - 1] == null ? 'M' : 'L'}${x},${y} `;
  });
  const path = document.createElementNS(SVG, 'path');
  path.setAttribute('d', d.trim());
  svg.append(path);
  return svg;
}
