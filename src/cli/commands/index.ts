import type { Command } from 'commander';

/** Each command module exports `register(program)`; the list is explicit (no discovery from the file system). */
type Register = (program: Command) => void;
const modules: Array<() => Promise<{ register: Register }>> = [];

export function registerCommands(program: Command): void {
  void program;
  void modules;
}
