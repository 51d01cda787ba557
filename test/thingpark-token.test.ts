/**
 * Every published and computed token vector of the ThingPark tunnel document (§2.5, §3.3),
 * verified or produced exactly (issue must-show 1).
 */
import { describe, it, expect } from 'vitest'
import { bodyElementCandidates, parseRawQuery, sha256Hex, signDownlinkQuery, uplinkToken, verifyDownlinkQuery, verifyReportToken } from '../src/thingpark/token.js'

const DOC_KEY = '46ab678cd45df4a4e4b375Eacd096acc' // sic: the upper-case E is in Actility's published key
const KPN_KEY = 'c6f5e3b263092120b8766b9aed9c41b4'
const OUR_KEY = '0123456789abcdef0123456789abcdef'

describe('report tokens (NS → AS)', () => {
  it.each([
    ['U2 Actility doc', DOC_KEY, '100000507000000000F1D8693270110027bd00', 'LrnDevEui=000000000F1D8693&LrnFPort=2&LrnInfos=UPHTTP_LAB_LORA&AS_ID=app1.sample.com&Time=2016-01-11T14%3A11%3A11.333%2B02%3A00', 'fd0b0b00464aa798a59282d64eaa70813e33bff87682880db49638569d096aad'],
    ['U3 KPN forum (no ms, no zone)', DOC_KEY, '100000507000000000F1D8693270110027bd00', 'LrnDevEui=000000000F1D8693&LrnFPort=2&LrnInfos=UPHTTP_LAB_LORA&AS_ID=app1.sample.com&Time=2016-01-11T14%3A11%3A11', '9bf99ba78791ad7f02c8d24dafe0a47da895ded5a0add99584d48d45c0e750a3'],
    ['U6 KPN-made uplink', KPN_KEY, '1000000010059AC000000000111000102030405', 'LrnDevEui=0059AC0000000001&LrnFPort=1&LrnInfos=TWA_100000001.999.AS-1-12345678&AS_ID=TWA_100000001.999&Time=2018-01-12T10%3A00%3A00.000%2B01%3A00', '5b7ec8b0b2c250fc792c76348de3b16ff04e27050baf8a37c891dcc85e88b0d4'],
    ['S1 KPN-made downlink_Sent', KPN_KEY, '1000000010059AC000000000111', 'LrnDevEui=0059AC0000000001&LrnFPort=1&LrnInfos=TWA_100000001.999.AS-1-12345678&AS_ID=TWA_100000001.999&Time=2018-01-12T10%3A00%3A00.000%2B01%3A00', '345dc204c72a9769441c4700cd0a0fb76c5b356e3931540e891fc7e68f236c98'],
    ['L1 KPN-made location', KPN_KEY, '1000000010059ac0000000001', 'LrnDevEui=0059ac0000000001&LrnFPort=0&LrnInfos=TWA_100000001.999.AS-1-12345678&AS_ID=TWA_100000001.999&Time=2018-01-12T10%3A00%3A00.000%2B01%3A00', 'd23b3507663d817c77d124cfbe4f1d5a67ba957e91471b39512b8f103fe46a17'],
    ['computed uplink', OUR_KEY, '1000000010018B20000000B202420102abcd', 'LrnDevEui=0018B20000000B20&LrnFPort=2&LrnInfos=TWA_100000001.1.AS-1-123456&AS_ID=TWA_100000001.1.AS&Time=2024-05-01T12%3A00%3A00.123%2B02%3A00', '39d79d5da291f170f13eaf501e4a4742344f007651e5cc3dccf36f9ae4d182f9'],
    ['computed downlink_Sent', OUR_KEY, '1000000010018B20000000B2027', 'LrnDevEui=0018B20000000B20&LrnFPort=2&LrnInfos=TWA_100000001.1.AS-1-123456&AS_ID=TWA_100000001.1.AS&Time=2024-05-01T12%3A00%3A09.500%2B02%3A00', 'b979a50b6f05cd82806841571a70a9d6a90a980acb894a648a0220fb126c63d9'],
    ['computed location', OUR_KEY, '1000000010018b20000000b20', 'LrnDevEui=0018b20000000b20&LrnFPort=0&LrnInfos=TWA_100000001.1.AS-1-123456&AS_ID=TWA_100000001.1.AS&Time=2024-05-01T12%3A00%3A10.000%2B02%3A00', '99af2a0828ed6e8f3e364f6afd56440283a50cc4ef21a8b2305a4b522eef7df7'],
  ])('%s', (_name, key, elements, rawQuery, token) => {
    const q = parseRawQuery(rawQuery)
    expect(q.ok).toBe(true)
    expect(uplinkToken(elements, (q as { params: Record<string, string> }).params, key)).toBe(token)
  })

  it('verifies from the report fields, typed or untyped, and whatever order the query arrives in', () => {
    const query = 'AS_ID=TWA_100000001.1.AS&LrnDevEui=0018B20000000B20&LrnFPort=2&LrnInfos=TWA_100000001.1.AS-1-123456&Time=2024-05-01T12%3A00%3A00.123%2B02%3A00&Token=39d79d5da291f170f13eaf501e4a4742344f007651e5cc3dccf36f9ae4d182f9'
    const q = (parseRawQuery(query) as { params: Record<string, string> }).params
    const typed = { CustomerID: '100000001', DevEUI: '0018B20000000B20', FPort: 2, FCntUp: 42, payload_hex: '0102abcd' }
    const untyped = { CustomerID: '100000001', DevEUI: '0018B20000000B20', FPort: '2', FCntUp: '42', payload_hex: '0102abcd' }
    expect(verifyReportToken('DevEUI_uplink', typed, q, OUR_KEY)).toBe(true)
    expect(verifyReportToken('DevEUI_uplink', untyped, q, OUR_KEY)).toBe(true)
    expect(verifyReportToken('DevEUI_uplink', { ...typed, FCntUp: 43 }, q, OUR_KEY)).toBe(false)
    expect(verifyReportToken('DevEUI_uplink', typed, { ...q, Token: q.Token!.toUpperCase() }, OUR_KEY)).toBe(true)
    expect(verifyReportToken('DevEUI_uplink', typed, { ...q, Token: undefined as unknown as string }, OUR_KEY)).toBe(false)
  })

  it('keeps a literal + and does not hash the raw encoded substring', () => {
    const q = (parseRawQuery('Time=2016-01-11T14%3A11%3A11.333%2B02%3A00&A=a+b') as { params: Record<string, string> }).params
    expect(q).toEqual({ Time: '2016-01-11T14:11:11.333+02:00', A: 'a+b' })
    expect(parseRawQuery('Time=%E0%A4%A').ok).toBe(false)
  })

  it('uses CustomerID+DevEUI for reports without a documented rule (§6.1)', () => {
    expect(bodyElementCandidates('DevEUI_notification', { CustomerID: '1', DevEUI: 'AB' })).toContain('1AB')
  })
})

describe('downlink tokens (AS → NS)', () => {
  it.each([
    ['ACT-INT send_downlink.sh', [['DevEUI', '000000000F1D8693'], ['FPort', '1'], ['Payload', '00'], ['AS_ID', 'app1.sample.com'], ['Time', '2016-01-11T14:28:00.333+02:00']], DOC_KEY, 'ea8f31d2299cbece8e180a3012766c4df15fe3cf2e142d9fdf4035b5894ec886'],
    ['KPN forum', [['DevEUI', '000000000F1D8693'], ['FPort', '1'], ['Payload', '00'], ['AS_ID', 'app1.sample.com'], ['Time', '2016-01-11T14:28:00']], DOC_KEY, 'b5a84fe9c8921e9de359e3041a37b76c4b122f6f9b83577b5596c842052f7e62'],
    ['computed, every option', [['DevEUI', '0018B20000000B20'], ['FPort', '2'], ['Payload', '0102'], ['Confirmed', '1'], ['FlushDownlinkQueue', '1'], ['AS_ID', 'TWA_100000001.1.AS'], ['Time', '2024-05-01T12:00:05.000+02:00'], ['CorrelationID', '4434704901C7450B']], OUR_KEY, '3fe99dcc10953d1d564071735814fe8e34bcaee8096c92b7cc30614a67925981'],
  ] as Array<[string, Array<[string, string]>, string, string]>)('%s', (_name, params, key, token) => {
    const signed = signDownlinkQuery(params, key)
    expect(signed.token).toBe(token)
    expect(signed.query).toContain('Time=' + encodeURIComponent(params.find(p => p[0] === 'Time')![1]))
    expect(signed.query.endsWith(`&Token=${token}`)).toBe(true)
    expect(verifyDownlinkQuery(signed.query, key)).toBe(true)
    expect(verifyDownlinkQuery(signed.query.replace('FPort=', 'FPort=9'), key)).toBe(false)
    expect(sha256Hex(params.map(([k, v]) => `${k}=${v}`).join('&') + key)).toBe(token)
  })
})
