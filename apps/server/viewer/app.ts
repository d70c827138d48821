/**
 * The browser viewer: pick or drop scans, then segment them either in this browser (decode, preprocessing and the
 * model on ONNX Runtime Web, with the same @brats code as the CLI: the scans never leave the machine) or on the
 * server (upload to POST /v1/segmentations and follow the job). Then show the chosen sequence with the predicted
 * mask over it (niivue, WebGL2) and the tumour volume of each region. Served by @brats/server, or as a static
 * site written by `brats viewer --out` (index.html's body then carries data-site="static": no server mode).
 */
import { NVImage, Niivue, SLICE_TYPE } from '@niivue/niivue';
import { REGION_COLORS, assembleCase, encodeNifti, gzipWeb, parseChannelName, parseModelManifest, parseNiftiBytes, type CanonicalCase, type ChannelName, type ModelManifest } from '@brats/io/browser';
import {
  caseIdOfFiles,
  caseRefFromFiles,
  describeLabels,
  openWebEngine,
  segmentLoadedCase,
  type CaseFiles,
  type OrtWebModule,
  type WebBackend,
  type WebEngine,
} from '@brats/ncs2-runtime/browser';

type Role = 'flair' | 't1w' | 't1gd' | 't2w';
type Region = 'WT' | 'TC' | 'ET';

interface Job {
  id: string;
  status: 'queued' | 'running' | 'succeeded' | 'failed';
  engine?: string;
  timings?: { queuedSeconds: number; loadSeconds: number; inferenceSeconds: number; totalSeconds: number };
  regions?: Region[];
  volumesMl?: Partial<Record<Region, number>>;
  labels?: { value: number; region: Region; meaning: string }[];
  notices?: string[];
  warnings?: string[];
  error?: { code: string; message: string };
}

const ROLES: readonly Role[] = ['flair', 't1w', 't1gd', 't2w'];
const ROLE_OF_CHANNEL: Record<ChannelName, Role> = { FLAIR: 'flair', T1w: 't1w', T1gd: 't1gd', T2w: 't2w' };
const ROLE_NAMES: Record<Role, string> = { flair: 'FLAIR', t1w: 'T1w', t1gd: 'T1gd', t2w: 'T2w' };
/** Region colours, the same as the report's figures: oedema (whole tumour) green, core red, enhancing yellow. */
const REGION_COLOURS = REGION_COLORS;
const REGION_NAMES: Record<Region, string> = { WT: 'Whole tumour', TC: 'Tumour core', ET: 'Enhancing tumour' };
const VIEWS: Record<string, SLICE_TYPE> = { axial: SLICE_TYPE.AXIAL, coronal: SLICE_TYPE.CORONAL, sagittal: SLICE_TYPE.SAGITTAL, multiplanar: SLICE_TYPE.MULTIPLANAR };

function element<T extends HTMLElement>(id: string): T {
  const found = document.getElementById(id);
  if (found === null) throw new Error(`missing #${id}`);
  return found as T;
}

const fileInput = element<HTMLInputElement>('file-input');
const dropZone = element<HTMLDivElement>('drop-zone');
const roleTable = element<HTMLTableElement>('role-table');
const uploadButton = element<HTMLButtonElement>('upload-button');
const progressBar = element<HTMLProgressElement>('upload-progress');
const statusLine = element<HTMLParagraphElement>('status');
const tokenInput = element<HTMLInputElement>('token-input');
const resultPanel = element<HTMLElement>('result-panel');
const sequenceSelect = element<HTMLSelectElement>('sequence-select');
const viewSelect = element<HTMLSelectElement>('view-select');
const opacitySlider = element<HTMLInputElement>('opacity-slider');
const maskLink = element<HTMLAnchorElement>('mask-link');
const volumeTable = element<HTMLTableElement>('volume-table');
const timing = element<HTMLParagraphElement>('timing');
const notes = element<HTMLUListElement>('notes');
const modeBox = element<HTMLFieldSetElement>('mode-box');
const browserMode = element<HTMLInputElement>('mode-browser');
const engineInfo = element<HTMLParagraphElement>('engine-info');

/** A static site (`brats viewer --out`) has no server API: it segments in the browser only. */
const STATIC_SITE = document.body.dataset.site === 'static';

/** The page's state, also read by the end-to-end test: idle, uploading, waiting, loading, shown or failed. */
function setState(state: string, text: string, isError = false): void {
  document.body.dataset.state = state;
  statusLine.textContent = text;
  statusLine.classList.toggle('error', isError);
}

function authHeaders(): Record<string, string> {
  const token = tokenInput.value.trim();
  return token === '' ? {} : { Authorization: `Bearer ${token}` };
}

async function describeFailure(response: Response): Promise<string> {
  try {
    const body = (await response.json()) as { code?: string; message?: string };
    return `${response.status} ${body.code ?? ''}: ${body.message ?? response.statusText}`;
  } catch {
    return `${response.status} ${response.statusText}`;
  }
}

/** Guesses a file's sequence from the last word of its name (BraTS 2017-2021 `_t1ce`, 2023 `-t1c`, or a role name). */
function guessRole(name: string): Role | undefined {
  const word = name.toLowerCase().replace(/\.nii(\.gz)?$/, '').split(/[_\-. ]/).pop() ?? '';
  const channel = parseChannelName(word);
  return channel === undefined ? undefined : ROLE_OF_CHANNEL[channel];
}

let chosen: File[] = [];

function showChosenFiles(): void {
  const body = roleTable.tBodies[0]!;
  body.replaceChildren();
  if (chosen.length === 1) {
    const row = body.insertRow();
    row.insertCell().textContent = chosen[0]!.name;
    row.insertCell().textContent = '4D: FLAIR, T1w, T1gd, T2w';
  } else {
    const guesses = chosen.map((file) => guessRole(file.name));
    chosen.forEach((file, index) => {
      const row = body.insertRow();
      row.insertCell().textContent = file.name;
      const select = document.createElement('select');
      select.dataset.index = String(index);
      for (const role of ROLES) select.add(new Option(ROLE_NAMES[role], role));
      select.value = guesses[index] ?? ROLES[index] ?? 'flair';
      row.insertCell().append(select);
    });
  }
  roleTable.hidden = chosen.length === 0;
  const valid = chosen.length === 1 || chosen.length === 4;
  uploadButton.disabled = !valid;
  setState('idle', valid ? 'Ready to segment.' : chosen.length === 0 ? '' : 'Choose one 4D file or four 3D files.', !valid && chosen.length > 0);
}

function chooseFiles(files: FileList | null): void {
  chosen = files === null ? [] : [...files];
  showChosenFiles();
}

fileInput.addEventListener('change', () => chooseFiles(fileInput.files));
dropZone.addEventListener('dragover', (event) => {
  event.preventDefault();
  dropZone.classList.add('dragging');
});
dropZone.addEventListener('dragleave', () => dropZone.classList.remove('dragging'));
dropZone.addEventListener('drop', (event) => {
  event.preventDefault();
  dropZone.classList.remove('dragging');
  chooseFiles(event.dataTransfer?.files ?? null);
});

/** The chosen files by role (or the one 4D file), as the role table says. @throws when a role is given twice. */
function chosenRoles(): { scan: File } | Record<Role, File> {
  if (chosen.length === 1) return { scan: chosen[0]! };
  const selects = [...roleTable.querySelectorAll<HTMLSelectElement>('select')];
  const roles = selects.map((select) => select.value as Role);
  if (new Set(roles).size !== 4) throw new Error('each of FLAIR, T1w, T1gd and T2w must be given exactly once');
  return Object.fromEntries(selects.map((select, index) => [select.value, chosen[index]!])) as Record<Role, File>;
}

function buildForm(): FormData {
  const form = new FormData();
  for (const [field, file] of Object.entries(chosenRoles())) form.append(field, file, file.name);
  return form;
}

/** Uploads with XMLHttpRequest because fetch reports no upload progress. */
function upload(form: FormData): Promise<Job> {
  return new Promise((resolve, reject) => {
    const request = new XMLHttpRequest();
    request.open('POST', '/v1/segmentations');
    for (const [name, value] of Object.entries(authHeaders())) request.setRequestHeader(name, value);
    request.upload.addEventListener('progress', (event) => {
      if (event.lengthComputable) progressBar.value = event.loaded / event.total;
    });
    request.addEventListener('load', () => {
      let body: { code?: string; message?: string } & Partial<Job> = {};
      try {
        body = JSON.parse(request.responseText) as typeof body;
      } catch {
        // A non-JSON answer (e.g. from a proxy) is reported by its status below.
      }
      if (request.status === 202) resolve(body as Job);
      else reject(new Error(`${request.status} ${body.code ?? ''}: ${body.message ?? request.statusText}`));
    });
    request.addEventListener('error', () => reject(new Error('the upload failed (network error)')));
    request.send(form);
  });
}

async function waitForJob(id: string): Promise<Job> {
  for (;;) {
    const response = await fetch(`/v1/segmentations/${id}`, { headers: authHeaders() });
    if (!response.ok) throw new Error(await describeFailure(response));
    const job = (await response.json()) as Job;
    if (job.status === 'succeeded' || job.status === 'failed') return job;
    setState('waiting', job.status === 'queued' ? 'Waiting in the queue…' : 'Segmenting…');
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
}

const niivue = new Niivue({ backColor: [0, 0, 0, 1], show3Dcrosshair: false, crosshairWidth: 0, isResizeCanvas: true, logLevel: 'error' });
let attached = false;

interface LabelEntry {
  value: number;
  region: Region;
  meaning: string;
}

/** A result on show, from the server or from this browser: what the panel draws and lists. */
interface Shown {
  /** NIfTI bytes of a sequence, named so that niivue knows their format. */
  scan(role: Role): Promise<{ bytes: ArrayBuffer; name: string }>;
  mask(): Promise<{ bytes: ArrayBuffer; name: string }>;
  labels: readonly LabelEntry[];
  regions: readonly Region[];
  volumesMl: Partial<Record<Region, number>>;
  /** What the user must know beside the mask: the input's warnings, then the segmentation's notices. */
  notes: readonly string[];
  timing: string;
  /** The mask's download: a server URL, or an object URL of the NIfTI made here. */
  maskHref: string;
  /** The download's file name ('' lets the server name it). */
  maskDownload: string;
}
let current: Shown | undefined;

/** Fetches a server file once per job (the sequence menu shows them again). */
function cachedFetch(): (url: string) => Promise<ArrayBuffer> {
  const buffers = new Map<string, Promise<ArrayBuffer>>();
  return (url) => {
    let buffer = buffers.get(url);
    if (buffer === undefined) {
      buffer = fetch(url, { headers: authHeaders() }).then(async (response) => {
        if (!response.ok) throw new Error(await describeFailure(response));
        return response.arrayBuffer();
      });
      buffers.set(url, buffer);
    }
    return buffer;
  };
}

/** A finished server job as a result to show. @throws for a failed job. */
function serverResult(job: Job): Shown {
  if (job.status === 'failed') throw new Error(`segmentation failed: ${job.error?.code ?? ''}: ${job.error?.message ?? 'unknown error'}`);
  const get = cachedFetch();
  const t = job.timings;
  return {
    scan: async (role) => ({ bytes: await get(`/v1/segmentations/${job.id}/scan/${role}`), name: `${role}.nii.gz` }),
    mask: async () => ({ bytes: await get(`/v1/segmentations/${job.id}/mask`), name: 'mask.nii.gz' }),
    labels: job.labels ?? [{ value: 1, region: 'WT', meaning: 'whole tumour' }],
    regions: job.regions ?? [],
    volumesMl: job.volumesMl ?? {},
    notes: [...(job.warnings ?? []), ...(job.notices ?? [])],
    timing: t === undefined ? '' : `Segmented on the server: engine ${job.engine ?? '?'}; ${t.totalSeconds.toFixed(2)} s (inference ${t.inferenceSeconds.toFixed(2)} s, waited ${t.queuedSeconds.toFixed(2)} s).`,
    maskHref: `/v1/segmentations/${job.id}/mask`,
    maskDownload: '',
  };
}

function maskColours(labels: readonly LabelEntry[]): { R: number[]; G: number[]; B: number[]; A: number[]; I: number[]; labels: string[] } {
  const colours = labels.map((label) => REGION_COLOURS[label.region]);
  return {
    R: [0, ...colours.map((c) => c[0])],
    G: [0, ...colours.map((c) => c[1])],
    B: [0, ...colours.map((c) => c[2])],
    A: [0, ...colours.map(() => 255)],
    I: [0, ...labels.map((label) => label.value)],
    labels: ['background', ...labels.map((label) => label.meaning)],
  };
}

/**
 * Where the mask is worth looking at: the axial slice through the labelled voxels' centre of mass (else, for a
 * tumour shaped so that slice misses it, the slice with the most of them), at the centre of its labelled voxels,
 * in world mm (the mask's header affine). Undefined for an empty mask.
 */
function tumourFocus(mask: NVImage): [number, number, number] | undefined {
  const dims = mask.hdr?.dims;
  const affine = mask.hdr?.affine;
  const voxels = mask.img;
  if (dims === undefined || affine === undefined || voxels === undefined || voxels === null) return undefined;
  const [nx, ny, nz] = [dims[1]!, dims[2]!, dims[3]!];
  const perSlice = new Array<number>(nz).fill(0);
  let total = 0;
  let sumK = 0;
  for (let k = 0; k < nz; k++) {
    for (let v = k * nx * ny; v < (k + 1) * nx * ny; v++) if (voxels[v] !== 0) perSlice[k]!++;
    total += perSlice[k]!;
    sumK += k * perSlice[k]!;
  }
  if (total === 0) return undefined;
  let slice = Math.round(sumK / total);
  if (perSlice[slice] === 0) slice = perSlice.indexOf(Math.max(...perSlice));
  let [si, sj] = [0, 0];
  for (let j = 0; j < ny; j++) {
    for (let i = 0; i < nx; i++) {
      if (voxels[(slice * ny + j) * nx + i] !== 0) [si, sj] = [si + i, sj + j];
    }
  }
  const voxel = [si / perSlice[slice]!, sj / perSlice[slice]!, slice];
  return [0, 1, 2].map((r) => affine[r]![0]! * voxel[0]! + affine[r]![1]! * voxel[1]! + affine[r]![2]! * voxel[2]! + affine[r]![3]!) as [number, number, number];
}

async function showSequence(result: Shown, role: Role, focus = false): Promise<void> {
  setState('loading', `Loading ${ROLE_NAMES[role]} and the mask…`);
  if (!attached) {
    await niivue.attachToCanvas(element<HTMLCanvasElement>('viewer-canvas'));
    attached = true;
  }
  const [scanFile, maskFile] = await Promise.all([result.scan(role), result.mask()]);
  while (niivue.volumes.length > 0) niivue.removeVolumeByIndex(0);
  // niivue may keep the buffer it is given: hand it copies so the cache stays usable.
  const scan = await NVImage.loadFromUrl({ url: scanFile.bytes.slice(0), name: scanFile.name, colormap: 'gray' });
  const mask = await NVImage.loadFromUrl({ url: maskFile.bytes.slice(0), name: maskFile.name, opacity: Number(opacitySlider.value) });
  mask.setColormapLabel(maskColours(result.labels));
  // Each addVolume refreshes every layer's textures (seconds for a whole scan on a software renderer): no
  // further refresh after them.
  niivue.addVolume(scan);
  niivue.addVolume(mask);
  niivue.setSliceType(VIEWS[viewSelect.value] ?? SLICE_TYPE.AXIAL);
  // A new result opens on the tumour, not on the middle slice; switching sequences keeps the place.
  const centre = focus ? tumourFocus(mask) : undefined;
  if (centre !== undefined) {
    niivue.scene.crosshairPos = niivue.mm2frac(centre);
    niivue.drawScene();
  }
  setState('shown', `Showing ${ROLE_NAMES[role]} with the predicted mask.`);
}

function showVolumes(result: Shown): void {
  const body = volumeTable.tBodies[0]!;
  body.replaceChildren();
  for (const region of result.regions) {
    const row = body.insertRow();
    row.dataset.region = region;
    row.insertCell().textContent = `${REGION_NAMES[region]} (${region})`;
    const swatch = document.createElement('span');
    swatch.className = 'swatch';
    swatch.style.background = `rgb(${REGION_COLOURS[region].join(', ')})`;
    row.insertCell().append(swatch);
    const cell = row.insertCell();
    cell.className = 'number';
    cell.textContent = (result.volumesMl[region] ?? 0).toFixed(2);
  }
  notes.replaceChildren(...result.notes.map((line) => Object.assign(document.createElement('li'), { textContent: line })));
  notes.hidden = result.notes.length === 0;
  timing.textContent = result.timing;
}

/** Shows a result: its volumes, the mask link and the FLAIR with the mask. */
async function showResult(result: Shown): Promise<void> {
  if (current !== undefined && current.maskHref.startsWith('blob:')) URL.revokeObjectURL(current.maskHref);
  current = result;
  resultPanel.hidden = false;
  maskLink.href = result.maskHref;
  if (result.maskDownload === '') maskLink.setAttribute('download', '');
  else maskLink.download = result.maskDownload;
  showVolumes(result);
  sequenceSelect.value = 'flair';
  await showSequence(result, 'flair', true);
}

// ---- Segmentation in this browser ---------------------------------------------------------------------------

/** The site's files, relative to this script (viewer/app.js): the same layout on the server and a static host. */
const SITE = { ort: new URL('ort/ort.min.mjs', import.meta.url).href, model: new URL('../model/', import.meta.url).href };

interface BrowserModel {
  manifest: ModelManifest;
  engine: WebEngine;
}
let browserModel: Promise<BrowserModel> | undefined;

/** Fetches a file of this site (never another origin), with the API token where the server asks for one. */
async function siteFile(url: string): Promise<Response> {
  const response = await fetch(url, { headers: authHeaders() });
  if (!response.ok) throw new Error(`${new URL(url).pathname}: ${await describeFailure(response)}`);
  return response;
}

async function fetchManifest(): Promise<ModelManifest> {
  const url = new URL('brats-model.json', SITE.model).href;
  return parseModelManifest(await (await siteFile(url)).text(), new URL(url).pathname);
}

/** Loads ONNX Runtime Web and the model once per page; the engine line says which backend runs and why. */
function loadBrowserModel(): Promise<BrowserModel> {
  browserModel ??= (async () => {
    const manifest = await fetchManifest();
    if (manifest.files.onnx === undefined) throw new Error('this model has no ONNX file, which in-browser segmentation needs (brats export adds it)');
    // A separate file of this site, not part of this bundle: ONNX Runtime Web starts its workers from its own URL.
    const ort = (await import(/* webpackIgnore: true */ SITE.ort)) as OrtWebModule;
    const model = new Uint8Array(await (await siteFile(new URL(manifest.files.onnx, SITE.model).href)).arrayBuffer());
    const asked = new URLSearchParams(location.search).get('backend');
    const backend: WebBackend | 'auto' = asked === 'wasm' || asked === 'webgpu' ? asked : 'auto';
    const engine = await openWebEngine(ort, model, manifest, { backend });
    engineInfo.textContent = `In this browser: ${engine.description} (${engine.reasons.join('; ')}).`;
    document.body.dataset.backend = engine.backend;
    document.body.dataset.threads = String(engine.threads);
    return { manifest, engine };
  })();
  browserModel.catch(() => {
    browserModel = undefined;
  });
  return browserModel;
}

/** NIfTI bytes made here as a file niivue reads (`.nii`, uncompressed), in an ArrayBuffer of their own. */
function niftiFile(bytes: Uint8Array, name: string): { bytes: ArrayBuffer; name: string } {
  return { bytes: bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer, name };
}

/** Decodes the chosen files into a case, with the CLI's checks (one grid, finite voxels, four frames). */
async function decodeChosen(onFile: (done: number, total: number) => void): Promise<CanonicalCase> {
  const roles = chosenRoles();
  const names = 'scan' in roles ? { scan: roles.scan.name } : (Object.fromEntries(ROLES.map((role) => [role, roles[role].name])) as Record<Role, string>);
  const files: File[] = 'scan' in roles ? [roles.scan] : ROLES.map((role) => roles[role]);
  const ref = caseRefFromFiles(caseIdOfFiles(names as CaseFiles), names as CaseFiles);
  const volumes = [];
  for (const [index, file] of files.entries()) {
    volumes.push(await parseNiftiBytes(new Uint8Array(await file.arrayBuffer()), file.name));
    onFile(index + 1, files.length);
  }
  return assembleCase(ref, volumes);
}

/** Segments the chosen files in this browser (nothing is uploaded) and shows the result. */
async function segmentHere(): Promise<void> {
  const started = performance.now();
  delete document.body.dataset.segmentSeconds;
  delete document.body.dataset.segmentTimings;
  setState('loading-model', 'Loading the model and ONNX Runtime Web…');
  const { manifest, engine } = await loadBrowserModel();
  const modelSeconds = (performance.now() - started) / 1000;
  setState('decoding', 'Reading the scans in this browser…');
  const decodeStarted = performance.now();
  const caseData = await decodeChosen((done, total) => {
    progressBar.value = (0.1 * done) / total;
  });
  const decodeSeconds = (performance.now() - decodeStarted) / 1000;
  setState('segmenting', 'Segmenting in this browser…');
  const segmentation = await segmentLoadedCase(caseData, manifest, engine, {
    // The page shows the label map only.
    labelsOnly: true,
    onSlices: (done, total) => {
      progressBar.value = 0.1 + (0.85 * done) / total;
      statusLine.textContent = `Segmenting in this browser… ${done} of ${total} slices`;
    },
  }, decodeSeconds);
  const maskNifti = encodeNifti(segmentation.labels);
  const gzipped = await gzipWeb(maskNifti);
  progressBar.value = 1;
  const scans = new Map<Role, { bytes: ArrayBuffer; name: string }>();
  const t = segmentation.timings;
  const result: Shown = {
    scan: async (role) => {
      let file = scans.get(role);
      if (file === undefined) {
        file = niftiFile(encodeNifti(caseData.channels[ROLES.indexOf(role)]!), `${role}.nii`);
        scans.set(role, file);
      }
      return file;
    },
    mask: async () => niftiFile(maskNifti, 'mask.nii'),
    labels: describeLabels(segmentation.labelMapping),
    regions: segmentation.regions,
    volumesMl: segmentation.volumesMl,
    notes: [...segmentation.warnings, ...segmentation.notices],
    timing: '',
    maskHref: URL.createObjectURL(new Blob([gzipped], { type: 'application/gzip' })),
    maskDownload: `${segmentation.id}.nii.gz`,
  };
  const displayStarted = performance.now();
  await showResult(result);
  // Segment to overlay: the time a user waits, model loading included (once per page). The split is for benches.
  const seconds = (performance.now() - started) / 1000;
  const split = { total: seconds, model: modelSeconds, read: t.load, preprocess: t.preprocess, inference: t.inference, postprocess: t.postprocess, display: (performance.now() - displayStarted) / 1000 };
  document.body.dataset.segmentTimings = JSON.stringify(split);
  document.body.dataset.segmentSeconds = seconds.toFixed(3);
  timing.textContent =
    `Segmented in this browser, nothing uploaded: ${engine.description}; ${seconds.toFixed(2)} s from Segment to overlay ` +
    `(read ${t.load.toFixed(2)} s, preprocess ${t.preprocess.toFixed(2)} s, inference ${t.inference.toFixed(2)} s, post-process ${t.postprocess.toFixed(2)} s, ${segmentation.engineCalls} engine calls).`;
}

// ---- Wiring -------------------------------------------------------------------------------------------------

uploadButton.addEventListener('click', () => {
  void (async () => {
    uploadButton.disabled = true;
    progressBar.hidden = false;
    progressBar.value = 0;
    try {
      if (STATIC_SITE || browserMode.checked) {
        await segmentHere();
        return;
      }
      setState('uploading', 'Uploading…');
      const accepted = await upload(buildForm());
      progressBar.value = 1;
      setState('waiting', 'Waiting in the queue…');
      // The page's address names the job from now on: reload it or share it to see this result again.
      history.replaceState(null, '', `?job=${encodeURIComponent(accepted.id)}`);
      await showResult(serverResult(await waitForJob(accepted.id)));
    } catch (error) {
      setState('failed', error instanceof Error ? error.message : String(error), true);
    } finally {
      uploadButton.disabled = !(chosen.length === 1 || chosen.length === 4);
    }
  })();
});

sequenceSelect.addEventListener('change', () => {
  if (current !== undefined) void showSequence(current, sequenceSelect.value as Role).catch((error: unknown) => setState('failed', String(error), true));
});
viewSelect.addEventListener('change', () => niivue.setSliceType(VIEWS[viewSelect.value] ?? SLICE_TYPE.AXIAL));
opacitySlider.addEventListener('input', () => {
  if (niivue.volumes.length > 1) niivue.setOpacity(1, Number(opacitySlider.value));
});

function describeModel(manifest: ModelManifest): string {
  return `Model: 2D U-Net, input ${manifest.model.inputShape.join('×')}, regions ${manifest.regions.join(', ')}`;
}

void (async () => {
  const info = element<HTMLParagraphElement>('model-info');
  if (STATIC_SITE) {
    // No server here: segmentation runs in this browser, and the token and mode choices do not apply.
    modeBox.hidden = true;
    element<HTMLDetailsElement>('token-box').hidden = true;
    browserMode.checked = true;
    try {
      info.textContent = `${describeModel(await fetchManifest())}; it runs in this browser, and the scans never leave this computer.`;
    } catch (error) {
      info.textContent = `Model information unavailable: ${error instanceof Error ? error.message : String(error)}`;
    }
    setState('idle', '');
    return;
  }
  try {
    const response = await fetch('/v1/model', { headers: authHeaders() });
    if (response.status === 401) {
      info.textContent = 'This server needs an API token (open “API token”).';
      element<HTMLDetailsElement>('token-box').open = true;
      return;
    }
    if (!response.ok) throw new Error(await describeFailure(response));
    const model = (await response.json()) as { engine: { name: string; device: string }; manifest: ModelManifest };
    info.textContent = `${describeModel(model.manifest)}; engine ${model.engine.name} on ${model.engine.device}.`;
    if (model.manifest.files.onnx === undefined) {
      browserMode.disabled = true;
      engineInfo.textContent = 'In-browser segmentation needs the model as ONNX; this bundle has none (brats export adds it).';
    }
  } catch (error) {
    info.textContent = `Model information unavailable: ${error instanceof Error ? error.message : String(error)}`;
  }
  // A job URL (/?job=ID, e.g. for a job submitted with curl) shows that job.
  const jobId = new URLSearchParams(location.search).get('job');
  if (jobId === null) {
    setState('idle', '');
    return;
  }
  try {
    setState('waiting', `Waiting for job ${jobId}…`);
    await showResult(serverResult(await waitForJob(jobId)));
  } catch (error) {
    setState('failed', error instanceof Error ? error.message : String(error), true);
  }
})();
