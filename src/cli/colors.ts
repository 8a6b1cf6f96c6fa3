/**
 * Colour only when a person is looking: a TTY, no NO_COLOR, no --no-color.
 * chalk is loaded only then, so piped and scripted runs never pay for it.
 */
export interface Colors {
  red(text: string): string;
  green(text: string): string;
  yellow(text: string): string;
  cyan(text: string): string;
  dim(text: string): string;
  bold(text: string): string;
}

const plain = (text: string): string => text;
const PLAIN: Colors = { red: plain, green: plain, yellow: plain, cyan: plain, dim: plain, bold: plain };

export async function createColors(enabled: boolean): Promise<Colors> {
  if (!enabled) return PLAIN;
  const { Chalk } = await import('chalk');
  const chalk = new Chalk({ level: 1 });
  return {
    red: (t) => chalk.red(t),
    green: (t) => chalk.green(t),
    yellow: (t) => chalk.yellow(t),
    cyan: (t) => chalk.cyan(t),
    dim: (t) => chalk.dim(t),
    bold: (t) => chalk.bold(t),
  };
}
