// The edge container is not built by CI (no Docker engine): this lints the Dockerfile with the VS Code Docker
// language server's validator and checks, with its parser, the promises docs/edge-container.md makes.
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

  it('installs with the lockfile, builds, and starts the CLI that apps/cli/package.json names', async () => {
    const dockerfile = DockerfileParser.parse(content);
    const runs = dockerfile
      .getInstructions()
      .filter((instruction) => instruction.getKeyword() === 'RUN')
      .map((instruction) => instruction.getArgumentsContent() ?? '');
    expect(runs.some((run) => run.includes('pnpm@12.4.2'))).toBe(true);
    expect(runs.filter((run) => run.startsWith('pnpm install --frozen-lockfile'))).toHaveLength(2);
    expect(runs).toContain('pnpm build');
    const cli = JSON.parse(await fs.readFile(path.join(root, 'apps/cli/package.json'), 'utf8')) as { bin: Record<string, string> };
    const binPath = `/app/apps/cli/${cli.bin.brats!.replace(/^\.\//, '')}`;
    expect(runs.some((run) => run.includes(`ln -s ${binPath} /usr/local/bin/brats`))).toBe(true);
    expect(dockerfile.getENTRYPOINTs().map((entrypoint) => entrypoint.getArgumentsContent())).toEqual(['["brats"]']);
    expect(dockerfile.getCMDs()[0]?.getArgumentsContent()).toContain('"serve"');
  });

  it('.dockerignore keeps dependencies, builds, test results, git and data out of the build context', async () => {
    const lines = (await fs.readFile(path.join(root, '.dockerignore'), 'utf8')).split('\n').map((line) => line.trim());
    for (const pattern of ['.git', '**/node_modules', '**/dist', 'test-results', 'shared', 'data', '**/*.partial']) {
      expect(lines).toContain(pattern);
    }
  });
});
