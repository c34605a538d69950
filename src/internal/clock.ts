/** Milliseconds since the epoch. Injected everywhere time matters, so tests never sleep. */
export type Clock = () => number

/** The real clock; the only place in `src/` that reads the system time directly. */
export const systemClock: Clock = () => Date.now()
