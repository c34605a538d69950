/**
 * A loopback TCP proxy whose link can be cut, so one test can simulate a
 * store outage (a Redis that stops answering) without pausing the real server
 * for every other test file running in parallel.
 */
import { connect, createServer, type Server, type Socket } from 'node:net'

export interface TcpProxy {
  readonly port: number
  /** Stop forwarding in both directions: the peer seems to hang. */
  blackhole(): void
  /** Forward again (data held while blackholed is dropped with its connection). */
  restore(): void
  /** Hold every chunk `ms` before forwarding it (order kept): a slow, not a dead, peer. `0` ends it. */
  delay(ms: number): void
  close(): Promise<void>
}

export async function startTcpProxy(targetHost: string, targetPort: number): Promise<TcpProxy> {
  const pairs = new Set<[Socket, Socket]>()
  let cut = false
  let delayMs = 0
  const server: Server = createServer((client) => {
    const upstream = connect(targetPort, targetHost)
    const pair: [Socket, Socket] = [client, upstream]
    pairs.add(pair)
    const forward = (from: Socket, to: Socket) =>
      from.on('data', (chunk) => {
        if (cut) return
        // Equal delays keep the order: timers of one duration fire in the order set.
        if (delayMs > 0) setTimeout(() => !cut && !to.destroyed && to.write(chunk), delayMs)
        else to.write(chunk)
      })
    forward(client, upstream)
    forward(upstream, client)
    const end = () => {
      pairs.delete(pair)
      client.destroy()
      upstream.destroy()
    }
    client.on('close', end).on('error', end)
    upstream.on('close', end).on('error', end)
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const address = server.address()
  if (address === null || typeof address === 'string') throw new Error('proxy has no port')
  return {
    port: address.port,
    blackhole() {
      cut = true
    },
    delay(ms: number) {
      delayMs = ms
    },
    restore() {
      cut = false
      // Connections that lost bytes are unusable: drop them so clients reconnect cleanly.
      for (const [a, b] of pairs) {
        a.destroy()
        b.destroy()
      }
    },
    async close() {
      for (const [a, b] of pairs) {
        a.destroy()
        b.destroy()
      }
      await new Promise<void>((resolve) => server.close(() => resolve()))
    },
  }
}
