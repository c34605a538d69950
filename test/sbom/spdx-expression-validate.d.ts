/** The package ships no types: true when `expression` is a valid SPDX license expression. */
declare module 'spdx-expression-validate' {
  export default function validate(expression: string): boolean
}
