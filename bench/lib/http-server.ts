/**
 * The child side of lib/http.ts: listens on an ephemeral loopback port,
 * reports it over IPC, answers the parent's questions (counters read after a
 * counting run) and closes cleanly so `--cpu-prof` can write its profile.
 */
import type { FastifyInstance } from 'fastify'
import type { FromServer, ToServer } from './http.js'

export type Answers = Readonly<Record<string, () => unknown>>

function send(message: FromServer): void {
  process.send?.(message)
}

export async function serve(
  app: FastifyInstance,
  answers: Answers = {},
  onClose: () => Promise<void> = async () => {},
): Promise<void> {
  await app.listen({ host: '127.0.0.1', port: 0 })
  const address = app.server.address()
  if (address === null || typeof address === 'string') throw new Error('no TCP address')

  let closing = false
  const close = async () => {
    if (closing) return
    closing = true
    await app.close()
    await onClose()
    send({ type: 'closed' })
    // Exit explicitly: a client library's timer must not keep a finished server alive.
    process.exit(0)
  }
  process.on('message', (m: ToServer) => {
    if (m.type === 'close') {
      void close()
      return
    }
    const answer = answers[m.what]
    if (answer === undefined) {
      send({ type: 'answer', id: m.id, error: `no answer for ${m.what}` })
      return
    }
    Promise.resolve()
      .then(answer)
      .then(
        (value) => send({ type: 'answer', id: m.id, value }),
        (err: unknown) => send({ type: 'answer', id: m.id, error: String(err) }),
      )
  })
  // The parent died (Ctrl-C, crash): do not stay behind listening.
  process.on('disconnect', () => void close())
  send({ type: 'listening', port: address.port })
}
