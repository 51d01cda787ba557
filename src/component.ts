/** A part of the daemon that the composition root starts in order and stops in reverse. */
export interface Component {
  readonly name: string
  start (): Promise<void>
  stop (): Promise<void>
  /** For /readyz; components without a dependency that can fail need not implement it. */
  ready? (): boolean
}
