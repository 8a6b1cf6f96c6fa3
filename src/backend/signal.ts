/**
 * A wake-up signal without lost wake-ups: read `version` before checking for
 * work, then `wait(version)` returns at once if anything woke it since.
 * Backend-neutral: consumers wait on it for work, workers for a resume.
 */
export class Signal {
  version = 0;
  private waiters: (() => void)[] = [];

  wake(): void {
    this.version++;
    const waiters = this.waiters;
    this.waiters = [];
    for (const resolve of waiters) resolve();
  }

  wait(since: number, timeoutMs?: number): Promise<void> {
    if (this.version !== since) return Promise.resolve();
    return new Promise((resolve) => {
      let timer: NodeJS.Timeout | undefined;
      const done = () => {
        clearTimeout(timer);
        resolve();
      };
      this.waiters.push(done);
      if (timeoutMs !== undefined) timer = setTimeout(done, timeoutMs);
    });
  }
}
