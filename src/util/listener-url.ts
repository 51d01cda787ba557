/** How a bound listener is named in log lines: `mqtts://0.0.0.0:8883`, `http://[::1]:8080`. */
export function listenerUrl (b: { protocol: string, address: string, port: number }): string {
  const host = b.address.includes(':') ? `[${b.address}]` : b.address
  return `${b.protocol}://${host}:${b.port}`
}

/** Bound to every interface (the unspecified address): reachable from other machines. */
export function onAllInterfaces (address: string): boolean {
  return address === '0.0.0.0' || address === '::' || address === '::0' || address === '0:0:0:0:0:0:0:0'
}
