// Lints the Dockerfile with the VS Code Docker language server's validator and checks, with its parser, the
// promises docs/edge-container.md makes. container.test.ts builds the image with podman and runs it; this file
// needs no container engine, so it runs everywhere.
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import dockerfileAst from 'dockerfile-ast';
import dockerfileUtils from 'dockerfile-utils';
import { beforeAll, describe, expect, it } from 'vitest';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const { DockerfileParser } = dockerfileAst;
const { validate, ValidationSeverity } = dockerfileUtils;

// Every check the validator can make, as an error.
const STRICT = {
  deprecatedMaintainer: ValidationSeverity.ERROR,
  directiveCasing: ValidationSeverity.ERROR,
  emptyContinuationLine: ValidationSeverity.ERROR,
  instructionCasing: ValidationSeverity.ERROR,
  instructionCmdMultiple: ValidationSeverity.ERROR,
  instructionEntrypointMultiple: ValidationSeverity.ERROR,
  instructionHealthcheckMultiple: ValidationSeverity.ERROR,
  instructionJSONInSingleQuotes: ValidationSeverity.ERROR,
  instructionWorkdirRelative: ValidationSeverity.ERROR,
};

let content: string;

beforeAll(async () => {
  content = await fs.readFile(path.join(root, 'Dockerfile'), 'utf8');
});

describe('Dockerfile', () => {
  it('the validator flags a broken Dockerfile (so a clean result means something)', () => {
    const problems = validate("FROM node:22-slim\nWORKDIR relative\nCMD ['a']\nCMD [\"b\"]\nFROBNICATE x\n", STRICT);
    expect(problems.length).toBeGreaterThanOrEqual(3);
  });

  it('passes the validator with every check as an error', () => {
    const problems = validate(content, STRICT).map((problem) => `line ${problem.range.start.line + 1}: ${problem.message}`);
    expect(problems).toEqual([]);
  });

  it('builds in a Node 22 stage and runs as the non-root user of a slim Node 22 stage', () => {
    const dockerfile = DockerfileParser.parse(content);
    const stages = dockerfile.getFROMs().map((from) => [from.getImage(), from.getBuildStage()]);
    expect(stages).toEqual([
      ['${NODE_IMAGE}', 'build'],
      ['${NODE_IMAGE}', 'runtime'],
    ]);
    const nodeImage = dockerfile.getInitialARGs().find((arg) => arg.getProperty()?.getName() === 'NODE_IMAGE');
    expect(nodeImage?.getProperty()?.getValue()).toMatch(/^node:22(\.\d+)*-[a-z]+-slim$/);
    const instructions = dockerfile.getInstructions();
    const runtimeStart = instructions.findIndex((instruction) => instruction.getKeyword() === 'FROM' && instruction.toString().includes('runtime'));
    const users = instructions.slice(runtimeStart).filter((instruction) => instruction.getKeyword() === 'USER');
    expect(users.map((user) => user.getArgumentsContent())).toEqual(['node']);
  });

  it('installs with the lockfile, builds, deploys the CLI alone, and starts the CLI that apps/cli/package.json names', async () => {
    const dockerfile = DockerfileParser.parse(content);
    const runs = dockerfile
      .getInstructions()
      .filter((instruction) => instruction.getKeyword() === 'RUN')
      .map((instruction) => instruction.getArgumentsContent() ?? '');
    expect(runs.some((run) => run.includes('pnpm@12.4.2'))).toBe(true);
    expect(runs).toContain('pnpm fetch --ignore-scripts');
    expect(runs.filter((run) => run.startsWith('pnpm install --frozen-lockfile'))).toEqual(['pnpm install --frozen-lockfile --offline --ignore-scripts']);
    expect(runs).toContain('pnpm turbo run build --filter=@brats/cli... --output-logs=errors-only');
    expect(runs).toContain('pnpm deploy --prod --filter @brats/cli --offline --ignore-scripts /out/apps/cli');
    // The one install script the edge needs: openvino-node's download of the OpenVINO runtime.
    expect(runs.some((run) => run.includes('node scripts/download-runtime.js --ignore-if-exists'))).toBe(true);
    const cli = JSON.parse(await fs.readFile(path.join(root, 'apps/cli/package.json'), 'utf8')) as { bin: Record<string, string> };
    const binPath = `/app/apps/cli/${cli.bin.brats!.replace(/^\.\//, '')}`;
    expect(runs.some((run) => run.includes(`ln -s ${binPath} /usr/local/bin/brats`))).toBe(true);
    expect(dockerfile.getENTRYPOINTs().map((entrypoint) => entrypoint.getArgumentsContent())).toEqual(['["brats"]']);
    expect(dockerfile.getCMDs()[0]?.getArgumentsContent()).toContain('"serve"');
  });

  it('keeps training, sources and build settings out of the runtime stage', () => {
    const dockerfile = DockerfileParser.parse(content);
    const instructions = dockerfile.getInstructions();
    const runtimeStart = instructions.findIndex((instruction) => instruction.getKeyword() === 'FROM' && instruction.toString().includes('runtime'));
    const build = instructions.slice(0, runtimeStart);
    const runtime = instructions.slice(runtimeStart);
    // The deploy step is followed by the one that removes @brats/unet and TensorFlow.js and what only they needed.
    const prune = build.find((instruction) => instruction.getKeyword() === 'RUN' && (instruction.getArgumentsContent() ?? '').includes('"@brats/unet"'));
    expect(prune?.getArgumentsContent()).toContain('"@tensorflow/"');
    expect(build.indexOf(prune!)).toBeGreaterThan(build.findIndex((instruction) => (instruction.getArgumentsContent() ?? '').startsWith('pnpm deploy')));
    // The runtime stage copies the deployed tree only, never the build context.
    const copies = runtime.filter((instruction) => instruction.getKeyword() === 'COPY' || instruction.getKeyword() === 'ADD');
    expect(copies.map((copy) => [copy.getKeyword(), copy.getArgumentsContent(), copy.toString().includes('--from=build')])).toEqual([['COPY', '/out /app', true]]);
    // onnxruntime-node's install script never fetches CUDA extras.
    const buildEnv = dockerfile.getENVs().filter((env) => build.includes(env)).flatMap((env) => env.getProperties().map((property) => [property.getName(), property.getValue()]));
    expect(buildEnv).toContainEqual(['ONNXRUNTIME_NODE_INSTALL', 'skip']);
    // The CA settings for a TLS-intercepting proxy are build arguments of the build stage: never in the image.
    const argNames = (stage: typeof instructions) =>
      stage.filter((instruction) => instruction.getKeyword() === 'ARG').map((instruction) => (instruction.getArgumentsContent() ?? '').split('=')[0]);
    expect(argNames(build)).toEqual(expect.arrayContaining(['NODE_EXTRA_CA_CERTS', 'SSL_CERT_FILE']));
    expect(argNames(runtime)).not.toContain('NODE_EXTRA_CA_CERTS');
    // ONNX Runtime's telemetry stays off in the image.
    const runtimeEnv = dockerfile.getENVs().filter((env) => runtime.includes(env)).flatMap((env) => env.getProperties().map((property) => [property.getName(), property.getValue()]));
    expect(runtimeEnv).toContainEqual(['ORT_DISABLE_TELEMETRY', '1']);
    const envNames = dockerfile.getENVs().flatMap((env) => env.getProperties().map((property) => property.getName()));
    expect(envNames).not.toContain('NODE_EXTRA_CA_CERTS');
    expect(envNames).not.toContain('SSL_CERT_FILE');
  });

  it('.dockerignore keeps dependencies, builds, test results, git and data out of the build context', async () => {
    const lines = (await fs.readFile(path.join(root, '.dockerignore'), 'utf8')).split('\n').map((line) => line.trim());
    // tmp holds the CI base image's root tarball (.ci/container-base.sh); brats-data and brats-demo are outputs.
    for (const pattern of ['.git', '**/node_modules', '**/dist', 'test-results', 'shared', 'data', '**/*.partial', 'tmp', 'brats-data', 'brats-demo']) {
      expect(lines).toContain(pattern);
    }
  });
});
