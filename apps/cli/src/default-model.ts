import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { UsageError } from './errors.js';

/**
 * The package of the pretrained bundle: what `--model` defaults to. The three-region model, because it scores the
 * higher mean whole-tumour Dice on its validation cases, which neither model trained on (0.93777 against 0.93715 for
 * `@brats/model-brats2018-wt`, which stays installable by name); `pretrained-regions.test.ts` checks the rule.
 */
export const PRETRAINED_PACKAGE = '@brats/model-brats-regions';

/** The help text of `--model` for every command that takes one: kept beside the default it names. */
export const MODEL_OPTION_HELP = `model bundle folder or installed model package (default: ${PRETRAINED_PACKAGE}, WT, TC and ET; @brats/model-brats2018-wt for the whole tumour alone)`;

/** npm package names: `name` or `@scope/name`. */
const PACKAGE_NAME = /^(@[a-z0-9][\w.-]*\/)?[a-z0-9][\w.-]*$/i;

/**
 * The bundle folder of installed package `name`, looked up from the working folder (a project that installed it)
 * and then from the CLI itself (a global install with the model beside it); undefined when neither has it.
 */
function installedBundle(name: string): string | undefined {
  const from = [path.join(process.cwd(), 'package.json'), fileURLToPath(import.meta.url)];
  for (const origin of from) {
    for (const entry of [`${name}/brats-model.json`, `${name}/package.json`]) {
      try {
        const folder = path.dirname(createRequire(origin).resolve(entry));
        if (existsSync(path.join(folder, 'brats-model.json'))) return folder;
      } catch {
        // Not resolvable from here, or the package does not export that file: try the next way.
      }
    }
  }
  return undefined;
}

/**
 * The bundle folder a `--model` value names: a folder as given; else an installed package of that name (e.g.
 * `@brats/model-brats-regions`); without a value, the pretrained model's package.
 * @throws {UsageError} when no value is given and the pretrained package is not installed, or the value is neither a
 *   path that exists nor an installed package.
 */
export async function resolveModelArgument(value: string | undefined, flag = '--model'): Promise<string> {
  if (value === undefined) {
    const bundle = installedBundle(PRETRAINED_PACKAGE);
    if (bundle === undefined) throw new UsageError(`no ${flag} given and the pretrained model is not installed: npm install ${PRETRAINED_PACKAGE}, or give ${flag} a bundle folder`);
    return bundle;
  }
  if (existsSync(value) || !PACKAGE_NAME.test(value)) return value;
  const bundle = installedBundle(value);
  if (bundle === undefined) throw new UsageError(`${flag} ${value}: no such folder, and no installed package of that name with a brats-model.json`);
  return bundle;
}
