import { probeEngines, type EngineProbe } from '@brats/ncs2-runtime';
import type { Command } from 'commander';
import { printLine, type CliContext } from '../context.js';
// Registers the TensorFlow.js engine, so that the listing shows every engine the commands can use.
import '../engine-choice.js';

/** Which engine `--engine auto` would take, from the probes (highest priority first), and why. */
function describeAuto(probes: readonly EngineProbe[]): { engine: string | null; reason: string } {
  const chosen = probes.find((probe) => probe.installed);
  const skipped = probes.slice(0, chosen === undefined ? probes.length : probes.indexOf(chosen));
  const why = skipped.map((probe) => `${probe.name} is not installed`).join(', ');
  if (chosen === undefined) return { engine: null, reason: `no engine is installed (${why})` };
  return { engine: chosen.name, reason: skipped.length === 0 ? `${chosen.name} is the preferred engine installed` : `${why}` };
}

/** `brats engines [--json]`: the inference engines, whether each is installed, its version and devices. */
export function registerEnginesCommand(program: Command, context: CliContext): void {
  program
    .command('engines')
    .description('list the inference engines (OpenVINO, ONNX Runtime): installed or not, versions, devices')
    .option('--json', 'print one JSON document instead of text')
    .action(async (options: { json?: boolean }) => {
      const probes = await probeEngines();
      const auto = describeAuto(probes);
      if (options.json === true) {
        printLine(context, JSON.stringify({ engines: probes, auto }, null, 2));
        return;
      }
      const width = Math.max(...probes.map((probe) => probe.name.length), 6) + 2;
      const versionWidth = Math.max(...probes.map((probe) => probe.version?.length ?? 1), 7) + 2;
      printLine(context, `${'engine'.padEnd(width)}${'installed'.padEnd(11)}${'version'.padEnd(versionWidth)}devices`);
      for (const probe of probes) {
        printLine(
          context,
          `${probe.name.padEnd(width)}${(probe.installed ? 'yes' : 'no').padEnd(11)}${(probe.version ?? '-').padEnd(versionWidth)}${probe.devices.join(', ') || '-'}`,
        );
      }
      for (const probe of probes.filter((candidate) => !candidate.installed)) {
        printLine(context, `  ${probe.name}: ${probe.reason ?? 'not installed'}`);
        if (probe.remedy !== undefined) printLine(context, `  ${' '.repeat(probe.name.length)}  ${probe.remedy}`);
      }
      printLine(context, `auto -> ${auto.engine ?? 'none'} (${auto.reason})`);
      printLine(context, 'NCS2 (MYRIAD): OpenVINO 2022.3 LTS is the last runtime with the MYRIAD plugin; run the FP16 IR of a bundle there.');
    });
}
