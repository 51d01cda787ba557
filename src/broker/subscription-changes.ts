/**
 * A guard around the Redis persistence's subscription changes. aedes-persistence's
 * BroadcastPersistence publishes each change to every instance and waits for its own broadcast to
 * come back, keyed by client id and the change's first topic. Aedes calls `addSubscriptions` once
 * per filter of a SUBSCRIBE, each time with the packet's whole list: with two filters the second
 * wait replaces the first under the same key, and when the broadcasts come back through
 * mqemitter-redis (after both waits are registered) the first is never answered, so the SUBACK is
 * never sent (moscajs/aedes#602; an app-connect 1.1.1 Conduit subscribes to down and clear at
 * once). Here, calls with the same list share one change, and one client's changes run one at a
 * time.
 */

export interface SubscriptionStore {
  addSubscriptions: (client: { id: string }, subs: unknown[], cb?: unknown) => unknown
  removeSubscriptions: (client: { id: string }, subs: unknown[], cb?: unknown) => unknown
}

export function serializeSubscriptionChanges<P extends SubscriptionStore> (persistence: P): P {
  const chains = new Map<string, Promise<unknown>>()
  const shared = new WeakMap<unknown[], Promise<unknown>>()

  const inTurn = (clientId: string, change: () => Promise<unknown>): Promise<unknown> => {
    const next = (chains.get(clientId) ?? Promise.resolve()).then(change, change)
    chains.set(clientId, next)
    // The chain's tail is dropped once settled, so idle clients hold nothing.
    next.then(() => undefined, () => undefined).finally(() => { if (chains.get(clientId) === next) chains.delete(clientId) })
    return next
  }

  const add = persistence.addSubscriptions.bind(persistence)
  const remove = persistence.removeSubscriptions.bind(persistence)
  persistence.addSubscriptions = (client, subs, cb) => {
    if (cb !== undefined) return add(client, subs, cb) // the callback form is not used by Aedes 1.x
    let change = shared.get(subs)
    if (change === undefined) {
      change = inTurn(client.id, () => add(client, subs) as Promise<unknown>)
      shared.set(subs, change)
    }
    return change
  }
  persistence.removeSubscriptions = (client, subs, cb) => {
    if (cb !== undefined) return remove(client, subs, cb)
    return inTurn(client.id, () => remove(client, subs) as Promise<unknown>)
  }
  return persistence
}
