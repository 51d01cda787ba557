/** Sleeps that a stop signal cuts short, so a simulator paced at a low rate exits at once on SIGINT. */
export class Sleeper {
  private stopping = false
  private readonly sleepers = new Set<() => void>()

  get stopped (): boolean { return this.stopping }

  async sleep (ms: number): Promise<void> {
    if (this.stopping || ms <= 0) return
    await new Promise<void>(resolve => {
      const wake = (): void => { clearTimeout(timer); this.sleepers.delete(wake); resolve() }
      const timer = setTimeout(wake, ms)
      this.sleepers.add(wake)
    })
  }

  /** Resolves once stop() is called. */
  async untilStopped (): Promise<void> {
    if (this.stopping) return
    await new Promise<void>(resolve => { this.sleepers.add(resolve) })
  }

  stop (): void {
    this.stopping = true
    for (const wake of [...this.sleepers]) wake()
  }
}
