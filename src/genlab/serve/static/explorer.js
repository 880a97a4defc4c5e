const AXIS = '#8c8c8c';
const COLOURS = ['#1f77b4', '#ff7f0e', '#2ca02c', '#d62728', '#9467bd', '#8c564b', '#e377c2', '#7f7f7f', '#bcbd22', '#17becf'];
let info = null, z = [], ends = null, attr = null, points = [];
let attributes = [];  // {name, vector, strength} per attribute slider: the decoded image is z + sum(strength * vector)

function gauss() { return Math.sqrt(-2 * Math.log(1 - Math.random())) * Math.cos(2 * Math.PI * Math.random()); }
function showError(text) { document.getElementById('error').textContent = text; document.getElementById('error').className = 'error'; }

async function api(path, options) {
  const r = await fetch(path, options);
  if (!r.ok) { showError((await r.json()).error); throw new Error(path); }
  return r;
}
// show a PNG response in an <img>, resolving once it is drawn (so `ready` means the pictures are there);
// the previous blob URL is released, and a decode cut short by a newer one is not an error
async function show(id, response) {
  const img = typeof id === 'string' ? document.getElementById(id) : id, old = img.src;
  img.src = URL.createObjectURL(await response.blob());
  if (old.startsWith('blob:')) URL.revokeObjectURL(old);
  await img.decode().catch(() => {});
}
async function decodeInto(id, code) {
  await show(id, await api('/api/decode', {method: 'POST', body: JSON.stringify({z: code})}));
}
async function gridInto(id, codes) {
  await show(id, await api('/api/decode-grid', {method: 'POST', body: JSON.stringify({codes})}));
}
// the code on show: z moved along every attribute vector by its slider's strength
function shifted() {
  return z.map((v, i) => attributes.reduce((sum, a) => sum + a.strength * a.vector[i], v));
}
const decode = () => decodeInto('decoded', shifted());

// every element is built with the DOM and every text set as text: names from a dataset never become markup
function element(tag, properties, ...children) {
  const node = Object.assign(document.createElement(tag), properties);
  node.append(...children);
  return node;
}

function drawSliders() {
  const box = document.getElementById('sliders'); box.replaceChildren();
  for (let i = 0; i < info.sliders; i++) {
    const input = element('input', {type: 'range', min: -3, max: 3, step: 0.05, value: z[i], id: 's' + i});
    const value = element('span', {id: 'v' + i, textContent: z[i].toFixed(2)});
    box.appendChild(element('div', {className: 'slider'}, element('label', {textContent: 'z' + i}), input, value));
    input.addEventListener('input', e => {
      z[i] = parseFloat(e.target.value); value.textContent = z[i].toFixed(2); markPad(); decode();
    });
  }
  if (info.latent_dim > info.sliders)
    document.getElementById('slider-note').textContent = `sliders for the first ${info.sliders} of ${info.latent_dim} dimensions`;
}

// one slider per named attribute (Smiling, Eyeglasses, ...), each adding strength x its vector to z;
// an attribute whose vector cannot be made (no test image on one side) gets a disabled slider; the error line says why
async function setupAttributeSliders() {
  const box = document.getElementById('attribute-sliders');
  attributes = await Promise.all(info.attributes.map(async name => {
    const answer = await api('/api/attribute-vector?name=' + encodeURIComponent(name)).catch(() => null);
    return {name, vector: answer ? (await answer.json()).vector : z.map(() => 0), strength: 0, usable: !!answer};
  }));
  box.replaceChildren(...attributes.map((a, i) => {
    const input = element('input', {type: 'range', min: -3, max: 3, step: 0.1, value: 0, id: 'a' + i,
                                    disabled: !a.usable, title: a.name});
    input.dataset.attribute = a.name;
    a.show = element('span', {id: 'av' + i, textContent: '0.0'});
    a.input = input;
    input.addEventListener('input', e => {
      a.strength = parseFloat(e.target.value); a.show.textContent = a.strength.toFixed(1); decode();
    });
    const label = element('label', {textContent: a.name, htmlFor: 'a' + i});
    return element('div', {className: 'slider'}, label, input, a.show);
  }));
  document.getElementById('attribute-reset').onclick = () => {
    for (const a of attributes) { a.strength = 0; a.input.value = 0; a.show.textContent = '0.0'; }
    decode();
  };
  document.getElementById('attributes-box').hidden = false;
}

// the big images are shown at a whole multiple of their pixels near 224 px (28 px -> 224, 64 px -> 256), so every
// pixel is the same size; a CSS variable set through the CSSOM, which the Content-Security-Policy allows
function sizeImages() {
  const side = Math.max(info.image_shape[1], info.image_shape[2]);
  document.documentElement.style.setProperty('--big', `${side * Math.max(1, Math.round(224 / side))}px`);
}

// the pad maps z0 in -3..3 left to right and z1 in -3..3 bottom to top; axes through 0, ticks at whole values
function drawAxes(g, size, s) {
  g.strokeStyle = AXIS; g.fillStyle = AXIS; g.lineWidth = 1; g.font = '10px system-ui, sans-serif';
  g.beginPath(); g.moveTo(0, 3 * s + 0.5); g.lineTo(size, 3 * s + 0.5); g.moveTo(3 * s + 0.5, 0); g.lineTo(3 * s + 0.5, size);
  for (let v = -2; v <= 2; v++) {
    g.moveTo((v + 3) * s + 0.5, 3 * s - 3); g.lineTo((v + 3) * s + 0.5, 3 * s + 4);
    g.moveTo(3 * s - 3, (3 - v) * s + 0.5); g.lineTo(3 * s + 4, (3 - v) * s + 0.5);
  }
  g.stroke();
  for (let v = -2; v <= 2; v++) {
    if (v === 0) continue;
    g.fillText(String(v), (v + 3) * s - 3, 3 * s + 14);
    g.fillText(String(v), 3 * s + 6, (3 - v) * s + 4);
  }
  g.fillText('z0 \u2192', size - 30, 3 * s - 6);
  g.fillText('z1 \u2191', 3 * s + 6, 11);
}
function drawPad(mark) {
  const canvas = document.getElementById('pad'), g = canvas.getContext('2d'), s = canvas.width / 6;
  g.fillStyle = '#fff'; g.fillRect(0, 0, canvas.width, canvas.height);
  drawAxes(g, canvas.width, s);
  for (const [x, y, label] of points) {
    g.fillStyle = COLOURS[label % COLOURS.length]; g.fillRect((x + 3) * s - 1, (3 - y) * s - 1, 2, 2);
  }
  if (mark) { g.strokeStyle = '#000'; g.lineWidth = 2; g.strokeRect((mark[0] + 3) * s - 5, (3 - mark[1]) * s - 5, 10, 10); }
}
// the marker follows the code however it changed: pad, sliders, reset or a random sample
function markPad() { if (!document.getElementById('pad-box').hidden) drawPad(z); }
function setupPad() {
  const canvas = document.getElementById('pad'), s = canvas.width / 6;
  let busy = false;
  const move = async e => {
    if (busy) return;
    const box = canvas.getBoundingClientRect();
    z = [(e.clientX - box.left) / s - 3, 3 - (e.clientY - box.top) / s];
    drawPad(z); busy = true;
    try { drawSliders(); await decode(); } finally { busy = false; }
  };
  canvas.addEventListener('mousemove', move);
  canvas.addEventListener('mousedown', move);
}

// the same path as genlab.latent.slerp: along the great circle between the directions, with the norm
// changing linearly from |a| to |b|
function mix(a, b, t, spherical) {
  if (!spherical) return a.map((v, i) => (1 - t) * v + t * b[i]);
  const na = Math.hypot(...a), nb = Math.hypot(...b);
  const ua = a.map(v => v / Math.max(na, 1e-12)), ub = b.map(v => v / Math.max(nb, 1e-12));
  const omega = Math.acos(Math.min(1, Math.max(-1, ua.reduce((s, v, i) => s + v * ub[i], 0))));
  const direction = omega < 1e-4 ? ua.map((v, i) => (1 - t) * v + t * ub[i])
    : ua.map((v, i) => (Math.sin((1 - t) * omega) * v + Math.sin(t * omega) * ub[i]) / Math.sin(omega));
  return direction.map(v => v * ((1 - t) * na + t * nb));
}
async function codeOf(inputId, fileId) {
  const file = document.getElementById(fileId).files[0];
  if (file) return (await (await api('/api/encode', {method: 'POST', body: file})).json()).z;
  return (await (await api('/api/test-code?index=' + document.getElementById(inputId).value)).json()).z;
}
async function setEnds() {
  if (info.kind === 'gan') ends = [z.map(gauss), z.map(gauss)];
  else ends = [await codeOf('ia', 'fa'), await codeOf('ib', 'fb')];
  await gridInto('ends', ends);
  await scrub();
}
async function scrub() {
  const t = parseFloat(document.getElementById('t').value);
  document.getElementById('t-value').textContent = t.toFixed(2);
  const spherical = document.querySelector('input[name=mode]:checked').value === 'spherical';
  if (ends) await decodeInto('interp', mix(ends[0], ends[1], t, spherical));
}

async function setupAttribute() {
  const from = document.getElementById('from-class'), to = document.getElementById('to-class');
  info.classes.forEach((name, i) => { from.add(new Option(name, i)); to.add(new Option(name, i)); });
  if (info.classes.length > 1) to.value = info.classes.length - 1;
  const chosen = async () => {
    const [a, b] = await Promise.all([from.value, to.value].map(async c =>
      (await (await api('/api/class-mean?class=' + c)).json()).z));
    const picks = (await (await api('/api/test-images?count=6&class=' + from.value)).json()).images;
    const codes = await Promise.all(picks.map(async p => (await (await api('/api/test-code?index=' + p.index)).json()).z));
    attr = {codes, vector: b.map((v, i) => v - a[i])};
    const originals = await Promise.all(picks.map(async p => {
      const img = element('img', {alt: `test image ${p.index}`, title: `test image ${p.index}`});
      await show(img, await api('/api/test-image?index=' + p.index));
      return img;
    }));
    document.getElementById('attr-originals').replaceChildren(...originals);
    await move();
  };
  const move = async () => {
    const s = parseFloat(document.getElementById('strength').value);
    document.getElementById('strength-value').textContent = s.toFixed(1);
    if (attr && attr.codes.length) await gridInto('attr', attr.codes.map(c => c.map((v, i) => v + s * attr.vector[i])));
  };
  from.onchange = chosen; to.onchange = chosen;
  document.getElementById('strength').addEventListener('input', move);
  await chosen();
}

async function start() {
  info = await (await api('/api/info')).json();
  document.getElementById('title').textContent = `genlab explorer: ${info.model} (${info.latent_dim}-d latent)`;
  z = new Array(info.latent_dim).fill(0);
  sizeImages(); drawSliders(); await decode();
  document.getElementById('prior-controls').hidden = !info.has_prior;  // an autoencoder has no prior to sample
  document.getElementById('reset').onclick = () => { z.fill(0); drawSliders(); markPad(); decode(); };
  document.getElementById('random').onclick = () => { z = z.map(gauss); drawSliders(); markPad(); decode(); };
  document.getElementById('interp-go').onclick = setEnds;
  document.getElementById('new-walk').onclick = setEnds;
  document.getElementById('t').addEventListener('input', scrub);
  document.querySelectorAll('input[name=mode]').forEach(r => r.addEventListener('change', scrub));
  if (info.kind === 'gan') {
    document.getElementById('endpoints-images').hidden = true;
    document.getElementById('endpoints-gan').hidden = false;
    document.getElementById('interp-title').textContent = 'A walk between two random z';
    document.getElementById('attr-box').hidden = true;
  } else {
    if (info.latent_dim === 2) {
      points = (await (await api('/api/scatter')).json()).points;
      document.getElementById('pad-box').hidden = false; drawPad(z); setupPad();
      document.getElementById('legend').replaceChildren(...info.classes.map((name, i) => {
        const swatch = element('span', {textContent: '\u25a0 '});
        swatch.style.color = COLOURS[i % COLOURS.length];  // a CSSOM property, not a style attribute: CSP allows it
        return element('span', {className: 'legend-entry'}, swatch, name);
      }));
    }
    if (info.attributes.length) await setupAttributeSliders();
    await setupAttribute();
  }
  await setEnds();
  document.body.dataset.ready = '1';
}
start();
