/**
 * The browser viewer: pick or drop scans, upload them to POST /v1/segmentations, follow the job, then show the
 * chosen sequence with the predicted mask over it (niivue, WebGL2) and the tumour volume of each region.
 */
import { NVImage, Niivue, SLICE_TYPE } from '@niivue/niivue';

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
  error?: { code: string; message: string };
}

const ROLES: readonly Role[] = ['flair', 't1w', 't1gd', 't2w'];
const ROLE_NAMES: Record<Role, string> = { flair: 'FLAIR', t1w: 'T1w', t1gd: 'T1gd', t2w: 'T2w' };
/** Region colours: whole tumour green, tumour core yellow, enhancing tumour red. */
const REGION_COLOURS: Record<Region, [number, number, number]> = { WT: [0, 200, 70], TC: [255, 215, 0], ET: [230, 30, 30] };
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

/** Guesses a file's sequence from its name (BraTS 2017-2021 and 2023 suffixes, or the role names). */
function guessRole(name: string): Role | undefined {
  const stem = name.toLowerCase().replace(/\.nii(\.gz)?$/, '');
  if (/(flair|t2f)$/.test(stem)) return 'flair';
  if (/(t1ce|t1c|t1gd)$/.test(stem)) return 't1gd';
  if (/(t1|t1n|t1w)$/.test(stem)) return 't1w';
  if (/(t2|t2w)$/.test(stem)) return 't2w';
  return undefined;
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
  setState('idle', valid ? 'Ready to upload.' : chosen.length === 0 ? '' : 'Choose one 4D file or four 3D files.', !valid && chosen.length > 0);
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

function buildForm(): FormData {
  const form = new FormData();
  if (chosen.length === 1) {
    form.append('scan', chosen[0]!, chosen[0]!.name);
    return form;
  }
  const selects = [...roleTable.querySelectorAll<HTMLSelectElement>('select')];
  const roles = selects.map((select) => select.value as Role);
  if (new Set(roles).size !== 4) throw new Error('each of FLAIR, T1w, T1gd and T2w must be given exactly once');
  selects.forEach((select, index) => form.append(select.value, chosen[index]!, chosen[index]!.name));
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
let current: Job | undefined;
const buffers = new Map<string, ArrayBuffer>();

async function fetchVolume(url: string): Promise<ArrayBuffer> {
  const cached = buffers.get(url);
  if (cached !== undefined) return cached;
  const response = await fetch(url, { headers: authHeaders() });
  if (!response.ok) throw new Error(await describeFailure(response));
  const buffer = await response.arrayBuffer();
  buffers.set(url, buffer);
  return buffer;
}

function maskColours(job: Job): { R: number[]; G: number[]; B: number[]; A: number[]; I: number[]; labels: string[] } {
  const labels = job.labels ?? [{ value: 1, region: 'WT' as Region, meaning: 'whole tumour' }];
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

async function showSequence(job: Job, role: Role): Promise<void> {
  setState('loading', `Loading ${ROLE_NAMES[role]} and the mask…`);
  if (!attached) {
    await niivue.attachToCanvas(element<HTMLCanvasElement>('viewer-canvas'));
    attached = true;
  }
  const [scanBuffer, maskBuffer] = await Promise.all([fetchVolume(`/v1/segmentations/${job.id}/scan/${role}`), fetchVolume(`/v1/segmentations/${job.id}/mask`)]);
  while (niivue.volumes.length > 0) niivue.removeVolumeByIndex(0);
  // niivue may keep the buffer it is given: hand it copies so the cache stays usable.
  const scan = await NVImage.loadFromUrl({ url: scanBuffer.slice(0), name: `${role}.nii.gz`, colormap: 'gray' });
  const mask = await NVImage.loadFromUrl({ url: maskBuffer.slice(0), name: 'mask.nii.gz', opacity: Number(opacitySlider.value) });
  mask.setColormapLabel(maskColours(job));
  niivue.addVolume(scan);
  niivue.addVolume(mask);
  niivue.setSliceType(VIEWS[viewSelect.value] ?? SLICE_TYPE.AXIAL);
  niivue.updateGLVolume();
  setState('shown', `Showing ${ROLE_NAMES[role]} with the predicted mask.`);
}

function showVolumes(job: Job): void {
  const body = volumeTable.tBodies[0]!;
  body.replaceChildren();
  for (const region of job.regions ?? []) {
    const row = body.insertRow();
    row.dataset.region = region;
    row.insertCell().textContent = `${REGION_NAMES[region]} (${region})`;
    const swatch = document.createElement('span');
    swatch.className = 'swatch';
    swatch.style.background = `rgb(${REGION_COLOURS[region].join(', ')})`;
    row.insertCell().append(swatch);
    const cell = row.insertCell();
    cell.className = 'number';
    cell.textContent = (job.volumesMl?.[region] ?? 0).toFixed(2);
  }
  const t = job.timings;
  timing.textContent = t === undefined ? '' : `Engine ${job.engine ?? '?'}; ${t.totalSeconds.toFixed(2)} s (inference ${t.inferenceSeconds.toFixed(2)} s, waited ${t.queuedSeconds.toFixed(2)} s).`;
}

/** Shows a finished job: its volumes, the mask link and the FLAIR with the mask. @throws for a failed job. */
async function showJob(job: Job): Promise<void> {
  if (job.status === 'failed') throw new Error(`segmentation failed: ${job.error?.code ?? ''}: ${job.error?.message ?? 'unknown error'}`);
  current = job;
  buffers.clear();
  resultPanel.hidden = false;
  maskLink.href = `/v1/segmentations/${job.id}/mask`;
  showVolumes(job);
  sequenceSelect.value = 'flair';
  await showSequence(job, 'flair');
}

uploadButton.addEventListener('click', () => {
  void (async () => {
    uploadButton.disabled = true;
    progressBar.hidden = false;
    progressBar.value = 0;
    try {
      setState('uploading', 'Uploading…');
      const accepted = await upload(buildForm());
      progressBar.value = 1;
      setState('waiting', 'Waiting in the queue…');
      // The page's address names the job from now on: reload it or share it to see this result again.
      history.replaceState(null, '', `?job=${encodeURIComponent(accepted.id)}`);
      await showJob(await waitForJob(accepted.id));
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

void (async () => {
  const info = element<HTMLParagraphElement>('model-info');
  try {
    const response = await fetch('/v1/model', { headers: authHeaders() });
    if (response.status === 401) {
      info.textContent = 'This server needs an API token (open “API token”).';
      element<HTMLDetailsElement>('token-box').open = true;
      return;
    }
    if (!response.ok) throw new Error(await describeFailure(response));
    const model = (await response.json()) as { engine: { name: string; device: string }; manifest: { regions: string[]; model: { inputShape: number[] } } };
    info.textContent = `Model: 2D U-Net, input ${model.manifest.model.inputShape.join('×')}, regions ${model.manifest.regions.join(', ')}; engine ${model.engine.name} on ${model.engine.device}.`;
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
    await showJob(await waitForJob(jobId));
  } catch (error) {
    setState('failed', error instanceof Error ? error.message : String(error), true);
  }
})();
