import type { UserWorkspaceConfig } from 'vitest/config';

export declare const workspaceAliases: Record<string, string>;
export declare function bratsProject(name: string): UserWorkspaceConfig;
