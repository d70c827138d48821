// Inference benchmark of the shipped model bundle (models/brats2018-wt-unet: 144x144x4, f = 8, depth 4, bilinear):
// ONNX Runtime on its model.onnx, native (onnxruntime-node) and WebAssembly (onnxruntime-web, the engine that is
// always installed), beside a PyTorch 1.13 reference of the same architecture loaded with the same weights
// (the ONNX initializers, read by torch-reference.py; Debian /usr/bin/python3 + python3-torch), both with 2 threads.
// Prints slices/s, whole-scan latency (144 slices), the ratios, and both as a share of this CPU's FP32 peak.
// FLOPs per slice are counted from the ONNX graph (Conv/ConvTranspose weight shapes and the propagated tensor shapes)
// and checked against a hand count from the manifest's architecture. No @brats/unet: this package never depends on it.
// Run: pnpm --filter @brats/ncs2-runtime bench   (after pnpm build)
import { spawnSync } from 'node:child_process';
import { promises as fs, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { LAYOUT_LABELS, generatePhantom, preprocessCase } from '@brats/io';
import { benchmarkEngine, createEngine } from '@brats/ncs2-runtime';
import { estimatePeak } from './cpu-peak.mjs';

const THREADS = 2;
const BATCHES = [
  [1, 10],
  [16, 3],
];
const SCAN_BATCH = 16;
// ONNX Runtime and PyTorch sum in different orders; anything above this is a different function, not rounding.
const AGREEMENT_TOLERANCE = 1e-4;
const here = path.dirname(fileURLToPath(import.meta.url));
const bundle = path.resolve(process.env.BRATS_BENCH_MODEL ?? path.join(here, '../../../models/brats2018-wt-unet'));

// ---------------------------------------------------------------------------------------------------------------------
// A minimal protobuf reader for the parts of an ONNX ModelProto that FLOP counting needs (graph nodes, attributes,
// initializer shapes and small initializer values). Field numbers from onnx/onnx.proto.

function readVarint(bytes, at) {
  let value = 0n;
  let shift = 0n;
  for (;;) {
    const byte = bytes[at];
    at += 1;
    value |= BigInt(byte & 0x7f) << shift;
    if ((byte & 0x80) === 0) return [value, at];
    shift += 7n;
  }
}

/** Fields of one message: { field, wire, value } for varints, { field, wire, start, end } for everything else. */
function readFields(bytes, start = 0, end = bytes.length) {
  const fields = [];
  let at = start;
  while (at < end) {
    const [key, afterKey] = readVarint(bytes, at);
    const field = Number(key >> 3n);
    const wire = Number(key & 7n);
    if (wire === 0) {
      const [value, next] = readVarint(bytes, afterKey);
      fields.push({ field, wire, value: Number(BigInt.asIntN(64, value)) });
      at = next;
    } else if (wire === 2) {
      const [length, next] = readVarint(bytes, afterKey);
      fields.push({ field, wire, start: next, end: next + Number(length) });
      at = next + Number(length);
    } else if (wire === 1 || wire === 5) {
      const size = wire === 1 ? 8 : 4;
      fields.push({ field, wire, start: afterKey, end: afterKey + size });
      at = afterKey + size;
    } else {
      throw new Error(`model.onnx: unsupported protobuf wire type ${wire} at byte ${at}`);
    }
  }
  return fields;
}

const decoder = new TextDecoder();
const text = (bytes, f) => decoder.decode(bytes.subarray(f.start, f.end));

/** Repeated int64 field, packed or not. */
function int64s(bytes, fields, number) {
  const values = [];
  for (const f of fields.filter((each) => each.field === number)) {
    if (f.wire === 0) {
      values.push(f.value);
      continue;
    }
    for (let at = f.start; at < f.end; ) {
      const [value, next] = readVarint(bytes, at);
      values.push(Number(BigInt.asIntN(64, value)));
      at = next;
    }
  }
  return values;
}

function readTensor(bytes, f) {
  const fields = readFields(bytes, f.start, f.end);
  const dims = int64s(bytes, fields, 1);
  const dataType = fields.find((each) => each.field === 2)?.value;
  const name = text(bytes, fields.find((each) => each.field === 8));
  const raw = fields.find((each) => each.field === 9);
  const values = () => {
    if (dataType === 1) {
      // FLOAT: raw_data (little-endian) or float_data (packed)
      const source = raw ?? fields.find((each) => each.field === 4);
      if (source === undefined) return [];
      const view = new DataView(bytes.buffer, bytes.byteOffset + source.start, source.end - source.start);
      return Array.from({ length: view.byteLength / 4 }, (_, i) => view.getFloat32(4 * i, true));
    }
    if (dataType === 7) {
      // INT64: raw_data or int64_data
      if (raw === undefined) return int64s(bytes, fields, 7);
      const view = new DataView(bytes.buffer, bytes.byteOffset + raw.start, raw.end - raw.start);
      return Array.from({ length: view.byteLength / 8 }, (_, i) => Number(view.getBigInt64(8 * i, true)));
    }
    throw new Error(`model.onnx: initializer ${name} has data type ${dataType}; only FLOAT and INT64 values are read here`);
  };
  return { name, dims, values };
}

function readNode(bytes, f) {
  const fields = readFields(bytes, f.start, f.end);
  const attributes = {};
  for (const a of fields.filter((each) => each.field === 5)) {
    const attributeFields = readFields(bytes, a.start, a.end);
    const name = text(bytes, attributeFields.find((each) => each.field === 1));
    const ints = int64s(bytes, attributeFields, 8);
    const single = attributeFields.find((each) => each.field === 3);
    attributes[name] = ints.length > 0 ? ints : single?.value;
  }
  return {
    op: text(bytes, fields.find((each) => each.field === 4)),
    inputs: fields.filter((each) => each.field === 1).map((each) => text(bytes, each)),
    outputs: fields.filter((each) => each.field === 2).map((each) => text(bytes, each)),
    attributes,
  };
}

function readOnnxGraph(file) {
  const bytes = readFileSync(file);
  const graph = readFields(bytes).find((each) => each.field === 7);
  if (graph === undefined) throw new Error(`${file}: no graph in the ONNX model`);
  const fields = readFields(bytes, graph.start, graph.end);
  return {
    nodes: fields.filter((each) => each.field === 1).map((each) => readNode(bytes, each)),
    initializers: new Map(fields.filter((each) => each.field === 5).map((each) => readTensor(bytes, each)).map((tensor) => [tensor.name, tensor])),
    inputs: fields.filter((each) => each.field === 11).map((each) => text(bytes, readFields(bytes, each.start, each.end).find((inner) => inner.field === 1))),
  };
}

// ---------------------------------------------------------------------------------------------------------------------
// FLOPs of one slice: 2 x MACs of every Conv and ConvTranspose (the rest, pooling, resizing, sigmoid, is < 1 %).

const SAME_SHAPE = new Set(['Relu', 'Sigmoid', 'LeakyRelu', 'Clip', 'BatchNormalization', 'Dropout', 'Identity', 'Add', 'Mul']);

function windowOutput(size, kernel, stride, padBefore, padAfter, dilation) {
  return Math.floor((size + padBefore + padAfter - dilation * (kernel - 1) - 1) / stride) + 1;
}

/** Walks the graph in order with batch 1, propagating shapes from the NHWC input; returns FLOPs and conv count. */
function countOnnxFlops(graph, inputShape) {
  const shapes = new Map();
  const input = graph.inputs.find((name) => !graph.initializers.has(name));
  shapes.set(input, [1, ...inputShape]);
  let flops = 0;
  let convolutions = 0;
  for (const node of graph.nodes) {
    const [first] = node.inputs;
    const shape = shapes.get(first);
    if (shape === undefined) throw new Error(`FLOP count: ${node.op} reads ${first}, whose shape is unknown`);
    const attributes = node.attributes;
    let output;
    if (node.op === 'Conv' || node.op === 'ConvTranspose' || node.op === 'MaxPool' || node.op === 'AveragePool') {
      const weight = node.op.startsWith('Conv') ? graph.initializers.get(node.inputs[1]) : undefined;
      if (node.op.startsWith('Conv') && weight === undefined) throw new Error(`FLOP count: ${node.op} weight ${node.inputs[1]} is not an initializer`);
      const kernel = attributes.kernel_shape ?? weight.dims.slice(2);
      const strides = attributes.strides ?? [1, 1];
      const pads = attributes.pads ?? [0, 0, 0, 0];
      const dilations = attributes.dilations ?? [1, 1];
      const group = attributes.group ?? 1;
      const [n, channels, height, width] = shape;
      if (node.op === 'ConvTranspose') {
        // weight [in, out / group, kh, kw]; each input pixel scatters a kh x kw x out patch
        const outputPadding = attributes.output_padding ?? [0, 0];
        const outHeight = (height - 1) * strides[0] - pads[0] - pads[2] + dilations[0] * (kernel[0] - 1) + 1 + outputPadding[0];
        const outWidth = (width - 1) * strides[1] - pads[1] - pads[3] + dilations[1] * (kernel[1] - 1) + 1 + outputPadding[1];
        output = [n, weight.dims[1] * group, outHeight, outWidth];
        flops += 2 * height * width * weight.dims[0] * weight.dims[1] * kernel[0] * kernel[1];
        convolutions += 1;
      } else {
        const outHeight = windowOutput(height, kernel[0], strides[0], pads[0], pads[2], dilations[0]);
        const outWidth = windowOutput(width, kernel[1], strides[1], pads[1], pads[3], dilations[1]);
        output = [n, weight === undefined ? channels : weight.dims[0], outHeight, outWidth];
        if (weight !== undefined) {
          // weight [out, in / group, kh, kw]
          flops += 2 * outHeight * outWidth * weight.dims[0] * weight.dims[1] * kernel[0] * kernel[1];
          convolutions += 1;
        }
      }
    } else if (node.op === 'Transpose') {
      output = attributes.perm.map((axis) => shape[axis]);
    } else if (node.op === 'Resize' || node.op === 'Upsample') {
      const scales = graph.initializers.get(node.op === 'Resize' ? node.inputs[2] : node.inputs[1]);
      const sizes = graph.initializers.get(node.inputs[3]);
      if (sizes !== undefined && sizes.dims[0] > 0) output = sizes.values();
      else if (scales !== undefined) output = shape.map((size, axis) => Math.floor(size * scales.values()[axis]));
      else throw new Error(`FLOP count: ${node.op} has neither scales nor sizes as initializers`);
    } else if (node.op === 'Concat') {
      const axis = attributes.axis < 0 ? attributes.axis + shape.length : attributes.axis;
      output = [...shape];
      output[axis] = node.inputs.reduce((sum, name) => sum + shapes.get(name)[axis], 0);
    } else if (SAME_SHAPE.has(node.op)) {
      output = shape;
    } else {
      throw new Error(`FLOP count: no shape rule for ONNX op ${node.op}; add one to infer-bench.mjs`);
    }
    for (const name of node.outputs) shapes.set(name, output);
  }
  return { flops, convolutions };
}

/**
 * The same count by hand from the manifest's architecture, for a bilinear U-Net: level l has f * 2^l filters at
 * (size / 2^l)^2 pixels; two 3x3 convolutions per level on the way down, two per level on the way up (the first one
 * reading the upsampled level below concatenated with the skip), then a 1x1 convolution to the output channels.
 */
function countArchitectureFlops(model) {
  const [height, width, inputChannels] = model.inputShape;
  const filters = (level) => model.filters * 2 ** level;
  const pixels = (level) => (height / 2 ** level) * (width / 2 ** level);
  let macs = 0;
  for (let level = 0; level <= model.depth; level += 1) {
    const input = level === 0 ? inputChannels : filters(level - 1);
    macs += pixels(level) * 9 * (input * filters(level) + filters(level) * filters(level));
  }
  for (let level = model.depth - 1; level >= 0; level -= 1) {
    macs += pixels(level) * 9 * ((filters(level + 1) + filters(level)) * filters(level) + filters(level) * filters(level));
  }
  macs += pixels(0) * filters(0) * model.outputChannels;
  return 2 * macs;
}

// ---------------------------------------------------------------------------------------------------------------------

/** `count` preprocessed NHWC slices of a seeded phantom, those with the most tumour, in one Float32Array. */
function phantomCheckSlices(manifest, count) {
  const phantom = generatePhantom({ seed: 3 });
  const { FLAIR, T1w, T1gd, T2w } = phantom.channels;
  const canonical = { id: phantom.id, layout: 'brats2017', channels: [FLAIR, T1w, T1gd, T2w], labels: phantom.labels, labelMapping: LAYOUT_LABELS.brats2017 };
  const prepared = preprocessCase(canonical, manifest.preprocessing);
  const [, sliceHeight, sliceWidth, sliceChannels] = prepared.shape;
  const sliceSize = sliceHeight * sliceWidth * sliceChannels;
  const chosen = Array.from(prepared.tumourVoxels.keys()).sort((a, b) => prepared.tumourVoxels[b] - prepared.tumourVoxels[a]).slice(0, count);
  const slices = new Float32Array(count * sliceSize);
  chosen.forEach((z, i) => slices.set(prepared.image.subarray(z * sliceSize, (z + 1) * sliceSize), i * sliceSize));
  return slices;
}

/** The engine timed at every size of BATCHES (the scan time at SCAN_BATCH), by batch size. */
async function measureBatches(engine) {
  const byBatch = {};
  for (const [batch, iterations] of BATCHES) {
    byBatch[batch] = await benchmarkEngine(engine, { batch, iterations, warmup: 2, scanSlices: batch === SCAN_BATCH ? 144 : 0 });
  }
  return byBatch;
}

/** Why the PyTorch column cannot run, or undefined when the interpreter imports torch and numpy. */
function torchUnavailable(python) {
  const probe = spawnSync(python, ['-c', 'import numpy, torch'], { encoding: 'utf8' });
  if (probe.error !== undefined) return `${python} did not start (${probe.error.message})`;
  if (probe.status !== 0) return `${python} cannot import torch and numpy (${probe.stderr.trim().split('\n').pop()}); on Debian: apt-get install python3-torch`;
  return undefined;
}

const manifest = JSON.parse(readFileSync(path.join(bundle, 'brats-model.json'), 'utf8'));
const model = manifest.model;
if (manifest.files?.onnx === undefined) throw new Error(`infer-bench: ${bundle} has no model.onnx (files.onnx in brats-model.json)`);
const graph = readOnnxGraph(path.join(bundle, manifest.files.onnx));
const { flops, convolutions } = countOnnxFlops(graph, model.inputShape);
const handFlops = model.upsampling === 'bilinear' && model.architecture === 'unet2d' ? countArchitectureFlops(model) : undefined;

const work = await fs.mkdtemp(path.join(os.tmpdir(), 'brats-infer-bench-'));
try {
  const { engine } = await createEngine('onnxruntime', { threads: THREADS });
  await engine.load(bundle);
  const [height, width, channels] = model.inputShape;
  // The same two slices through both runtimes, to show they compute the same function: the two most tumorous slices
  // of a phantom, preprocessed as the manifest says, so the outputs span background to tumour, not a flat zero.
  const check = phantomCheckSlices(manifest, 2);
  await fs.writeFile(path.join(work, 'check-input.bin'), check);
  await fs.writeFile(path.join(work, 'check-output.bin'), await engine.run(check, 2));

  const ort = await measureBatches(engine);
  const nativeCheck = await engine.run(check, 2);
  await engine.dispose();

  // The WebAssembly build on the same slices and batches, with the same threads.
  const { engine: wasmEngine } = await createEngine('onnxruntime-web', { threads: THREADS });
  await wasmEngine.load(bundle);
  const wasmCheck = await wasmEngine.run(check, 2);
  const wasmDiff = wasmCheck.reduce((max, value, index) => Math.max(max, Math.abs(value - nativeCheck[index])), 0);
  const wasm = await measureBatches(wasmEngine);
  await wasmEngine.dispose();

  // The bundle's INT8 model (brats export --precision int8), when it has one, on the same engine, slices and batches.
  let int8;
  let int8Diff;
  if (manifest.files.onnxInt8 !== undefined) {
    const { engine: int8Engine } = await createEngine('onnxruntime', { threads: THREADS, int8: true });
    await int8Engine.load(bundle);
    const int8Check = await int8Engine.run(check, 2);
    int8Diff = int8Check.reduce((max, value, index) => Math.max(max, Math.abs(value - nativeCheck[index])), 0);
    int8 = await measureBatches(int8Engine);
    await int8Engine.dispose();
  }

  // Debian's python3-torch lives in the system Python; BRATS_BENCH_PYTHON picks another interpreter.
  const python = process.env.BRATS_BENCH_PYTHON ?? '/usr/bin/python3';
  let torch;
  const unavailable = torchUnavailable(python);
  if (unavailable !== undefined) {
    console.log(`PyTorch column skipped: ${unavailable}`);
  } else {
    const options = JSON.stringify({ threads: THREADS, batches: BATCHES, warmup: 2, scanBatch: SCAN_BATCH });
    const result = spawnSync(python, [path.join(here, 'torch-reference.py'), bundle, work, options], { encoding: 'utf8', maxBuffer: 1 << 24 });
    if (result.status === 0) torch = JSON.parse(result.stdout);
    else console.log(`PyTorch column skipped: torch-reference.py exited ${result.status ?? result.signal}: ${result.stderr.trim().split('\n').slice(-3).join(' | ')}`);
  }

  const peak = estimatePeak(THREADS);
  const gflopPerSlice = flops / 1e9;
  const share = (slicesPerSecond, gflops) => `${((100 * slicesPerSecond * gflopPerSlice) / gflops).toFixed(1)} %`;
  console.log(`${path.relative(process.cwd(), bundle) || bundle}: U-Net ${height}x${width}x${channels}, f=${model.filters}, depth ${model.depth}, ${model.upsampling}, ${model.parameters} parameters; ${THREADS} threads`);
  console.log(`FLOPs per slice (2 x conv MACs, from the ONNX graph's ${convolutions} Conv/ConvTranspose nodes): ${gflopPerSlice.toFixed(4)} GFLOP` + (handFlops === undefined ? ' (no hand count for this architecture)' : `; hand count from the manifest: ${(handFlops / 1e9).toFixed(4)} GFLOP, ${handFlops === flops ? 'equal' : `DIFFERENT by ${flops - handFlops}`}`));
  if (handFlops !== undefined && handFlops !== flops) process.exitCode = 1;
  console.log(`CPU: ${peak.model}, ${peak.ghz.toFixed(2)} GHz x ${peak.threads} cores x ${peak.perCycle} FLOPs/cycle = ${peak.gflops.toFixed(0)} GFLOP/s FP32 peak (${peak.assumption}; base clock, no boost)`);
  if (torch !== undefined) {
    const agree = torch.maxAbsDiffVsOnnxRuntime <= AGREEMENT_TOLERANCE;
    console.log(`measured sgemm (torch.mm 2048², ${THREADS} threads): ${torch.sgemmGflops.toFixed(1)} GFLOP/s`);
    console.log(`torch ${torch.torch} (weights from ${torch.weightsFrom}) vs ONNX Runtime on the same 2 slices: max |diff| = ${torch.maxAbsDiffVsOnnxRuntime.toExponential(2)} (${agree ? 'agree' : 'DISAGREE'}, tolerance ${AGREEMENT_TOLERANCE.toExponential(0)}; outputs span ${torch.outputRange.map((value) => value.toFixed(3)).join(' to ')})`);
    if (!agree) process.exitCode = 1;
    const ortRate = (ort[SCAN_BATCH].slicesPerSecond * flops) / 1e9;
    if (torch.sgemmGflops < ortRate) {
      console.log(`note: torch.mm (${torch.sgemmGflops.toFixed(1)} GFLOP/s) is slower than ONNX Runtime's convolutions (${ortRate.toFixed(1)} GFLOP/s): a loaded machine, or the reference BLAS behind torch (update-alternatives --display libblas.so.3-x86_64-linux-gnu; libopenblas0 is the fast one): the % sgemm column understates what the CPU can do`);
    }
  }
  console.log(`onnxruntime-web (wasm) vs onnxruntime-node on the same 2 slices: max |diff| = ${wasmDiff.toExponential(2)} (${wasmDiff <= AGREEMENT_TOLERANCE ? 'agree' : 'DISAGREE'})`);
  if (wasmDiff > AGREEMENT_TOLERANCE) process.exitCode = 1;
  if (int8Diff !== undefined) {
    const q = manifest.quantization;
    console.log(`INT8 (${manifest.files.onnxInt8}) vs FP32 on the same 2 slices: max |diff| = ${int8Diff.toExponential(2)} (quantisation, not rounding)` + (q === undefined ? '' : `; validation WT Dice ${q.validation.int8.WT.toFixed(4)} INT8 vs ${q.validation.fp32.WT.toFixed(4)} FP32 (recorded)`));
  } else {
    console.log(`INT8 row skipped: ${path.basename(bundle)} has no INT8 model (brats export BUNDLE --precision int8 --data DATASET)`);
  }
  console.log('');
  console.log('batch  runtime                      ms/batch p50   ms p95    slices/s  GFLOP/s   % peak   % sgemm   ORT speed-up');
  for (const [batch] of BATCHES) {
    const o = ort[batch];
    const t = torch?.runs[String(batch)];
    const row = (name, latency, rate) =>
      `${String(batch).padStart(5)}  ${name.padEnd(28)} ${latency.p50.toFixed(1).padStart(11)} ${latency.p95.toFixed(1).padStart(8)} ${rate.toFixed(1).padStart(11)} ${(rate * gflopPerSlice).toFixed(1).padStart(8)} ${share(rate, peak.gflops).padStart(8)} ${torch === undefined ? '' : share(rate, torch.sgemmGflops).padStart(9)}`;
    console.log(row(`onnxruntime ${o.version.split(' ')[1]}`, o.latencyMs, o.slicesPerSecond));
    const q = int8?.[batch];
    if (q !== undefined) console.log(`${row(`onnxruntime ${q.version.split(' ')[1]} INT8`, q.latencyMs, q.slicesPerSecond)}   ${(q.slicesPerSecond / o.slicesPerSecond).toFixed(2)}x FP32${t === undefined ? '' : `, ${(q.slicesPerSecond / t.slicesPerSecond).toFixed(2)}x pytorch`}`);
    const w = wasm[batch];
    console.log(`${row(`onnxruntime-web ${w.version.split(' ')[1]} wasm`, w.latencyMs, w.slicesPerSecond)}   ${(w.slicesPerSecond / o.slicesPerSecond).toFixed(2)}x native${t === undefined ? '' : `, ${(w.slicesPerSecond / t.slicesPerSecond).toFixed(2)}x pytorch`}`);
    if (t !== undefined) console.log(`${row(`pytorch ${torch.torch}`, t.latencyMs, t.slicesPerSecond)}   ${(o.slicesPerSecond / t.slicesPerSecond).toFixed(2)}x`);
  }
  const scan = ort[SCAN_BATCH].scanSeconds;
  console.log('');
  console.log(`whole scan (144 slices, batches of ${SCAN_BATCH}): onnxruntime ${scan.toFixed(2)} s${int8 === undefined ? '' : `, INT8 ${int8[SCAN_BATCH].scanSeconds.toFixed(2)} s`}, onnxruntime-web (wasm) ${wasm[SCAN_BATCH].scanSeconds.toFixed(2)} s` + (torch === undefined ? '' : `, pytorch ${torch.scanSeconds.toFixed(2)} s, ORT speed-up ${(torch.scanSeconds / scan).toFixed(2)}x`));
  const [one, five] = os.loadavg();
  console.log(`machine load average ${one.toFixed(2)} (1 min), ${five.toFixed(2)} (5 min) on ${os.availableParallelism()} CPUs`);
} finally {
  await fs.rm(work, { recursive: true, force: true });
}
