const UNITS = ['KB', 'MB', 'GB', 'TB', 'PB'] as const

/**
 * A size as the specification writes it: under 1024 bytes the whole number
 * of bytes (`500 → "500 bytes"`, `1 → "1 byte"`); from 1024 up, the value in
 * the largest 1024-based unit that keeps it at least 1, with one decimal
 * rounded half up (`512000 → "500.0 KB"`, `1048576 → "1.0 MB"`). A value
 * that rounds to 1024.0 of a unit is written in the next one
 * (`1048575 → "1.0 MB"`, never `"1024.0 KB"`). Units stop at PB.
 */
export function humanReadableSize(bytes: number): string {
  if (!Number.isFinite(bytes) || bytes < 0) return `${bytes} bytes`
  if (bytes < 1024) {
    const whole = Math.floor(bytes)
    return whole === 1 ? '1 byte' : `${whole} bytes`
  }
  let unit = 0
  let value = bytes / 1024
  while (unit < UNITS.length - 1 && Math.round(value * 10) >= 10240) {
    value /= 1024
    unit++
  }
  return `${(Math.round(value * 10) / 10).toFixed(1)} ${UNITS[unit]}`
}

/** `"1000 bytes"`, or `"1048576 bytes (1.0 MB)"` where the human form says something more. */
export function bytesWithHuman(bytes: number): string {
  const plain = bytes === 1 ? '1 byte' : `${bytes} bytes`
  return bytes < 1024 ? plain : `${plain} (${humanReadableSize(bytes)})`
}
