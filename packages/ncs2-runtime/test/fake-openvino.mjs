// A stand-in for openvino-node's addon, loaded through BRATS_OPENVINO_MODULE, so the OpenVINO engine's own
// logic (file choice, compile options, request pool, IR writing, manifest) is tested where openvino-node cannot
// install. It computes the pointwise.onnx fixture's formula, y = sigmoid(0.5 x0 - x1 + 0.25), per pixel.
import { writeFileSync } from 'node:fs';

export const calls = { readModel: [], compileModel: [], inferAsync: 0, maxInFlight: 0 };
let inFlight = 0;

class Tensor {
  constructor(type, shape, data) {
    this.type = type;
    this.shape = shape;
    this.data = data ?? new Float32Array(shape.reduce((a, b) => a * b, 1));
  }
  getShape() {
    return this.shape;
  }
}

class Core {
  getAvailableDevices() {
    return ['CPU', 'GPU.0'];
  }
  getVersions(device) {
    return { [device]: { buildNumber: '2026.4.0-fake', description: 'fake plugin' } };
  }
  getProperty() {
    return '';
  }
  async readModel(modelPath, weightsPath) {
    calls.readModel.push([modelPath, weightsPath]);
    const port = (name) => ({ anyName: name, getAnyName: () => name, getPartialShape: () => '[?,2,3,2]' });
    return { source: modelPath, inputs: [port('input')], outputs: [port('probabilities')], getName: () => 'fake', isDynamic: () => true };
  }
  async compileModel(model, device, config) {
    calls.compileModel.push([device, config]);
    return {
      inputs: model.inputs,
      outputs: model.outputs,
      getProperty: (name) => (name === 'OPTIMAL_NUMBER_OF_INFER_REQUESTS' ? 2 : ''),
      createInferRequest: () => ({
        async inferAsync(inputs) {
          calls.inferAsync += 1;
          inFlight += 1;
          calls.maxInFlight = Math.max(calls.maxInFlight, inFlight);
          await new Promise((resolve) => setTimeout(resolve, 1));
          inFlight -= 1;
          const tensor = inputs.input;
          const [batch, height, width] = tensor.getShape();
          const out = new Float32Array(batch * height * width);
          for (let i = 0; i < out.length; i += 1) out[i] = 1 / (1 + Math.exp(-(0.5 * tensor.data[2 * i] - tensor.data[2 * i + 1] + 0.25)));
          return { probabilities: new Tensor('f32', [batch, height, width, 1], out) };
        },
      }),
    };
  }
}

export const addon = {
  Core,
  Tensor,
  saveModelSync(model, xmlPath, compressToFp16 = true) {
    writeFileSync(xmlPath.replace(/\.xml$/, '.bin'), Buffer.from([1, 2, 3, 4]));
    writeFileSync(xmlPath, `<net name="fake" precision="${compressToFp16 ? 'FP16' : 'FP32'}" source="${model.source}"/>`);
  },
};
