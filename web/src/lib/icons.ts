/** A few inline SVG icons (emoji fonts cannot be assumed on school machines; no icon fonts or CDNs). */
const SVG = 'http://www.w3.org/2000/svg';

type Shape = ['rect', Record<string, number | string>] | ['path', Record<string, string>];

const ICONS: Record<'hand' | 'mic', Shape[]> = {
  hand: [
    ['rect', { x: 6, y: 11, width: 12, height: 10.5, rx: 4 }],
    ['rect', { x: 6, y: 4.5, width: 2.8, height: 10, rx: 1.4 }],
    ['rect', { x: 9.3, y: 2.5, width: 2.8, height: 11, rx: 1.4 }],
    ['rect', { x: 12.6, y: 3.2, width: 2.8, height: 10.5, rx: 1.4 }],
    ['rect', { x: 15.7, y: 5.5, width: 2.6, height: 9, rx: 1.3 }],
    ['rect', { x: 2.6, y: 10.2, width: 2.8, height: 7.5, rx: 1.4, transform: 'rotate(-38 4 14)' }],
  ],
  mic: [
    ['rect', { x: 9, y: 2.5, width: 6, height: 11.5, rx: 3 }],
    ['path', { d: 'M6 11.5a6 6 0 0 0 12 0', fill: 'none', stroke: 'currentColor', 'stroke-width': '2', 'stroke-linecap': 'round' }],
    ['rect', { x: 11, y: 17, width: 2, height: 4 }],
    ['rect', { x: 8, y: 20.5, width: 8, height: 1.8, rx: 0.9 }],
  ],
};

export function icon(name: keyof typeof ICONS, label?: string): SVGSVGElement {
  const svg = document.createElementNS(SVG, 'svg');
  svg.setAttribute('viewBox', '0 0 24 24');
  svg.setAttribute('class', `icon icon-${name}`);
  svg.setAttribute('fill', 'currentColor');
  if (label) {
    svg.setAttribute('role', 'img');
    svg.setAttribute('aria-label', label);
    const title = document.createElementNS(SVG, 'title');
    title.textContent = label;
    svg.append(title);
  } else {
    svg.setAttribute('aria-hidden', 'true');
  }
  for (const [tag, attrs] of ICONS[name]) {
    const el = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
    svg.append(el);
  }
  return svg;
}
