/** The four MRI sequences of BraTS in canonical order, and the names layouts use for them. */
export type ChannelName = 'FLAIR' | 'T1w' | 'T1gd' | 'T2w';

/** Canonical channel order of every case: FLAIR, T1w, T1gd, T2w (the Decathlon's order). */
export const CANONICAL_CHANNELS: readonly ChannelName[] = ['FLAIR', 'T1w', 'T1gd', 'T2w'];

const ALIASES: Readonly<Record<string, ChannelName>> = {
  flair: 'FLAIR',
  t2f: 'FLAIR',
  t1: 'T1w',
  t1w: 'T1w',
  t1n: 'T1w',
  t1gd: 'T1gd',
  t1ce: 'T1gd',
  t1c: 'T1gd',
  t2: 'T2w',
  t2w: 'T2w',
};

/** The canonical channel for a sequence name as layouts and users write it (`t1ce`, `t1gd`, `T1c` → T1gd), or undefined. */
export function parseChannelName(name: string): ChannelName | undefined {
  return ALIASES[name.trim().toLowerCase()];
}
