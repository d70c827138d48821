import { describe, expect, it } from 'vitest';
import { COMMANDS, nativeEngineLikely } from './index.js';

describe('the command catalogue', () => {
  it('starts work ahead only for the segmentation commands', () => {
    expect(COMMANDS.filter((entry) => entry.start !== undefined).map((entry) => entry.name)).toEqual(['predict', 'infer']);
  });

  it.each([
    [['infer', 'CASE', '--out', 'OUT'], true],
    [['predict', '--model', 'B', 'CASE', '--out', 'OUT'], true],
    [['infer', 'CASE', '--engine', 'onnxruntime'], true],
    [['infer', 'CASE', '--engine=onnxruntime'], true],
    [['infer', 'CASE', '--engine=auto'], true],
    [['infer', 'CASE', '--engine', 'openvino'], false],
    [['predict', 'CASE', '--engine=tfjs'], false],
    [['infer', 'CASE', '--engine', 'onnxruntime-web'], false],
    [['infer', '--help'], false],
    [['help', 'infer'], false],
    [['infer', '-h'], false],
  ] as const)('expects the native engine for %j: %s', (argv, expected) => {
    expect(nativeEngineLikely(argv)).toBe(expected);
  });
});
