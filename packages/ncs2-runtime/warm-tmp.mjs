const t0 = performance.now();
const ort = await import('onnxruntime-node');
const t1 = performance.now();
const s = await ort.InferenceSession.create('/work/main/models/brats2018-wt-unet/model.onnx', { executionProviders: ['cpu'], graphOptimizationLevel: 'all', executionMode: 'sequential', interOpNumThreads: 1, extra: { session: { intra_op: { allow_spinning: '0' } } } });
const t2 = performance.now();
console.log('import', (t1 - t0).toFixed(0), 'create', (t2 - t1).toFixed(0));
const n = Number(process.argv[2] ?? 16);
for (let r = 0; r < 5; r++) {
  const x = new Float32Array(n * 144 * 144 * 4).map(() => Math.random());
  const a = performance.now();
  await s.run({ [s.inputNames[0]]: new ort.Tensor('float32', x, [n, 144, 144, 4]) });
  console.log('run', r, (performance.now() - a).toFixed(1));
}
