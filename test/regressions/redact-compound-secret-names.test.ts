/**
 * Regression: redaction matched patterns by segment only, so a name written
 * as one lowercase word kept its value: `newpassword`, `accesstoken`,
 * `userpassword`, `clientsecret`, `privatekey` were recorded in clear, and
 * `passwd` and `pwd` were no pattern at all. Strong words (password, passwd,
 * secret, token, credential, private key, api key) now match anywhere in
 * the normalized name; short, ambiguous words (key, auth, pwd, jwt, …) keep
 * segment matching.
 */
import { execute, parse } from 'graphql'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { DEFAULT_SENSITIVE_PATTERNS, redactSensitive } from '../../src/graphql/index.js'
import {
  dropContextManager,
  exportedText,
  otel,
  tracingSchema,
  useContextManager,
} from '../graphql/tracing-fixtures.js'

beforeAll(useContextManager)
afterAll(dropContextManager)

const R = '[REDACTED]'

/** The names the issue lists, and their obvious relatives. */
const COMPOUND = [
  'newpassword',
  'accesstoken',
  'userpassword',
  'passwd',
  'pwd',
  'clientsecret',
  'privatekey',
  'NEWPASSWORD',
  'oldpasswd',
  'userPwd',
  'user_pwd',
  'refreshtoken',
  'idtoken',
  'dbcredentials',
  'xapikey',
  'apikeyid',
  'privatekeypem',
  'PRIVATE-KEY',
  'clientsecretvalue',
  'ｐａｓｓｗｏｒｄ',
]

describe('strong words match anywhere in the name', () => {
  it.each(COMPOUND)('%s is redacted by the default patterns', (name) => {
    expect(redactSensitive({ [name]: 'hunter2', id: 7 })).toEqual({ [name]: R, id: 7 })
  })

  it('passwd, pwd and private_key are default patterns', () => {
    expect(DEFAULT_SENSITIVE_PATTERNS).toEqual(
      expect.arrayContaining(['passwd', 'pwd', 'private_key']),
    )
  })

  it('short, ambiguous words still match only as words', () => {
    expect(
      redactSensitive({ keyboard: 1, monkey: 2, author: 3, authority: 4, pwdx: 5, jwtish: 6 }),
    ).toEqual({ keyboard: 1, monkey: 2, author: 3, authority: 4, pwdx: 5, jwtish: 6 })
  })

  it('a custom strong pattern matches anywhere too; a custom short one by segment', () => {
    const patterns = ['password', 'pin']
    expect(redactSensitive({ newpassword: 1, userPin: 2, spinner: 3 }, { patterns })).toEqual({
      newpassword: R,
      userPin: R,
      spinner: 3,
    })
  })

  it('the tracer redacts such variables and scrubs their values from error messages', async () => {
    const o = otel()
    const tracer = o.tracer({ includeVariables: true })
    await tracer.wrapExecute(execute)({
      schema: tracingSchema(() => tracer),
      document: parse('query Q($input: JSON) { echo(input: $input) }'),
      variableValues: {
        input: { newpassword: 'N3wPassw0rd!', accesstoken: 'at-123456', clientsecret: 'cs-9876' },
      },
    })
    const text = exportedText(o.spans())
    for (const secret of ['N3wPassw0rd!', 'at-123456', 'cs-9876'])
      expect(text).not.toContain(secret)
    expect(JSON.parse(o.byName('query Q').attributes['graphql.variables'] as string)).toEqual({
      input: { newpassword: R, accesstoken: R, clientsecret: R },
    })
  })
})
